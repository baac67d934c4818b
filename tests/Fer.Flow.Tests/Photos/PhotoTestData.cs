using Fer.Core.Photos;
using Fer.Tests.Shared;

namespace Fer.Flow.Tests.Photos;

/// <summary>
/// Real test data the tests fetch themselves on a fresh machine: skimage's astronaut.png (a public-domain NASA
/// portrait) from Debian's python3-skimage, and OpenCV's frontal-face Haar cascade (installed by opencv-data, or
/// taken from that package without installing it). `apt-get download` needs no root; files are kept in
/// $TMPDIR/fer-testdata. When apt cannot reach its mirror the tests that need them skip, saying why.
/// </summary>
public static class PhotoTestData
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "fer-testdata");
    private static readonly Lazy<(string? Path, string? Why)> AstronautFile = new(() => FromPackage("python3-skimage", "skimage/data/astronaut.png", "astronaut.png"));
    private static readonly Lazy<(string? Path, string? Why)> CascadeFile = new(() => File.Exists(CascadeFaceFinder.DefaultCascade)
        ? (CascadeFaceFinder.DefaultCascade, null)
        : FromPackage("opencv-data", "haarcascades/haarcascade_frontalface_default.xml", "haarcascade_frontalface_default.xml"));

    public static string Astronaut => Require(AstronautFile.Value);
    public static string Cascade => Require(CascadeFile.Value);

    /// <summary>Skips the test (with the reason) when the data cannot be obtained or OpenCV cannot load.</summary>
    public static void SkipUnlessAvailable()
    {
        OpenCvForTests.SkipUnlessLoads();
        Skip.If(AstronautFile.Value.Path is null, AstronautFile.Value.Why);
        Skip.If(CascadeFile.Value.Path is null, CascadeFile.Value.Why);
    }

    /// <summary>Skips the test (with the reason) when OpenCV's native library cannot load (images are read with it).</summary>
    public static void SkipUnlessOpenCvLoads() => OpenCvForTests.SkipUnlessLoads();

    private static string Require((string? Path, string? Why) file) => file.Path ?? throw new InvalidOperationException(file.Why);

    private static (string? Path, string? Why) FromPackage(string package, string pathEnding, string name)
    {
        var target = Path.Combine(Root, name);
        if (File.Exists(target) && new FileInfo(target).Length > 0) return (target, null);
        var work = Path.Combine(Root, $"{package}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            var (code, output) = OpenCvForTests.ExecIn(work, "apt-get", "download", package);
            if (code != 0) return (null, $"cannot fetch test data: `apt-get download {package}` failed (exit {code}; is the network or apt mirror unavailable?): {Last(output)}");
            var deb = Directory.GetFiles(work, "*.deb").FirstOrDefault();
            if (deb is null) return (null, $"`apt-get download {package}` wrote no .deb");
            var extracted = Path.Combine(work, "x");
            (code, output) = OpenCvForTests.ExecIn(work, "dpkg-deb", "-x", deb, extracted);
            if (code != 0) return (null, $"`dpkg-deb -x {deb}` failed (exit {code}): {Last(output)}");
            var found = Directory.EnumerateFiles(extracted, "*", SearchOption.AllDirectories)
                .FirstOrDefault(f => f.Replace('\\', '/').EndsWith(pathEnding, StringComparison.Ordinal));
            if (found is null) return (null, $"{package} has no {pathEnding}");
            var temp = target + $".{Guid.NewGuid():N}.tmp";
            File.Copy(found, temp);
            File.Move(temp, target, overwrite: true);
            return (target, null);
        }
        catch (System.ComponentModel.Win32Exception e) { return (null, $"cannot fetch test data: apt-get/dpkg-deb not available ({e.Message})"); }
        finally { try { Directory.Delete(work, true); } catch (IOException) { } }
    }

    private static string Last(string output) => string.Join(" | ", output.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(2));
}
