using System.Diagnostics;
using Fer.Core.Photos;

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
    private static readonly Lazy<string?> OpenCvProblem = new(() =>
    {
        // OpenCV's official Linux runtime links GTK 3. A fresh Debian machine lacks it, and the first failed load is
        // permanent for the process (a type initializer), so install it before touching OpenCV when we may.
        InstallGtkWhereMissing();
        try { using var m = new OpenCvSharp.Mat(2, 2, OpenCvSharp.MatType.CV_8UC1); return null; }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException)
        {
            return $"OpenCV's native library does not load ({e.GetBaseException().Message}); on Debian `apt-get install libgtk-3-0`";
        }
    });

    public static string Astronaut => Require(AstronautFile.Value);
    public static string Cascade => Require(CascadeFile.Value);

    /// <summary>Skips the test (with the reason) when the data cannot be obtained or OpenCV cannot load.</summary>
    public static void SkipUnlessAvailable()
    {
        Skip.If(OpenCvProblem.Value is not null, OpenCvProblem.Value);
        Skip.If(AstronautFile.Value.Path is null, AstronautFile.Value.Why);
        Skip.If(CascadeFile.Value.Path is null, CascadeFile.Value.Why);
    }

    /// <summary>Skips the test (with the reason) when OpenCV's native library cannot load (images are read with it).</summary>
    public static void SkipUnlessOpenCvLoads() => Skip.If(OpenCvProblem.Value is not null, OpenCvProblem.Value);

    private static void InstallGtkWhereMissing()
    {
        try
        {
            if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return;
            var (_, libraries) = Exec("ldconfig", "/", "-p");
            if (libraries.Contains("libgtk-3.so.0", StringComparison.Ordinal)) return;
            string[] install = ["install", "-y", "-q", "--no-install-recommends", "libgtk-3-0", "opencv-data"];
            if (Exec("apt-get", "/", install).Code != 0 && Exec("apt-get", "/", "update", "-q").Code == 0) Exec("apt-get", "/", install);
        }
        catch (System.ComponentModel.Win32Exception) { } // no ldconfig or apt-get: the load below says what is missing
    }

    private static string Require((string? Path, string? Why) file) => file.Path ?? throw new InvalidOperationException(file.Why);

    private static (string? Path, string? Why) FromPackage(string package, string pathEnding, string name)
    {
        var target = Path.Combine(Root, name);
        if (File.Exists(target) && new FileInfo(target).Length > 0) return (target, null);
        var work = Path.Combine(Root, $"{package}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            var (code, output) = Exec("apt-get", work, "download", package);
            if (code != 0) return (null, $"cannot fetch test data: `apt-get download {package}` failed (exit {code}; is the network or apt mirror unavailable?): {Last(output)}");
            var deb = Directory.GetFiles(work, "*.deb").FirstOrDefault();
            if (deb is null) return (null, $"`apt-get download {package}` wrote no .deb");
            var extracted = Path.Combine(work, "x");
            (code, output) = Exec("dpkg-deb", work, "-x", deb, extracted);
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

    private static (int Code, string Output) Exec(string file, string cwd, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); return (-1, "timed out"); }
        return (p.ExitCode, stdout.Result + stderr);
    }
}
