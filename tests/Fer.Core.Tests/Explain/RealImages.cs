using System.Diagnostics;
using SkiaSharp;

namespace Fer.Core.Tests.Explain;

/// <summary>
/// Real photographs for the explanation tests: scikit-image's astronaut.png and camera.png, which Debian ships in
/// python3-skimage. They are looked for in FER_TEST_IMAGES, then in a cache folder under the temp directory, and
/// otherwise fetched there with `apt-get download python3-skimage` and `dpkg-deb -x`; when none of that works the
/// tests that need them are skipped with the reason.
/// </summary>
internal static class RealImages
{
    private static readonly Lazy<(string? Folder, string Reason)> Found = new(Locate);

    /// <summary>The folder holding astronaut.png and camera.png; skips the calling test when they cannot be had.</summary>
    public static string Folder()
    {
        var (folder, reason) = Found.Value;
        Skip.If(folder is null, reason);
        return folder!;
    }

    /// <summary>
    /// 48x48 grey crops in 0..1: each photograph scaled to 48 px and to 96 px, the latter cut into its four quadrants
    /// (10 images), luminance 0.299 R + 0.587 G + 0.114 B.
    /// </summary>
    public static float[] Crops(out int count)
    {
        var folder = Folder();
        var images = new List<float[]>();
        foreach (var name in new[] { "astronaut.png", "camera.png" })
        {
            using var bitmap = SKBitmap.Decode(Path.Combine(folder, name)) ?? throw new InvalidDataException($"{name}: not a PNG SkiaSharp can read");
            images.Add(Grey(bitmap, 48, 0, 0, 48));
            for (int q = 0; q < 4; q++) images.Add(Grey(bitmap, 96, q / 2 * 48, q % 2 * 48, 48));
        }
        count = images.Count;
        return images.SelectMany(i => i).ToArray();
    }

    private static float[] Grey(SKBitmap source, int scaledSide, int top, int left, int side)
    {
        using var scaled = source.Resize(new SKImageInfo(scaledSide, scaledSide, SKColorType.Rgba8888, SKAlphaType.Premul),
            new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        var result = new float[side * side];
        for (int r = 0; r < side; r++)
            for (int c = 0; c < side; c++)
            {
                var p = scaled.GetPixel(left + c, top + r);
                result[r * side + c] = (0.299f * p.Red + 0.587f * p.Green + 0.114f * p.Blue) / 255f;
            }
        return result;
    }

    private static (string?, string) Locate()
    {
        static bool Has(string? dir) => dir is not null && File.Exists(Path.Combine(dir, "astronaut.png")) && File.Exists(Path.Combine(dir, "camera.png"));
        var given = Environment.GetEnvironmentVariable("FER_TEST_IMAGES");
        if (Has(given)) return (given, "");
        var cache = Path.Combine(Path.GetTempPath(), "fer-test-images");
        var data = Path.Combine(cache, "x", "usr", "lib", "python3", "dist-packages", "skimage", "data");
        if (Has(data)) return (data, "");
        try
        {
            Directory.CreateDirectory(cache);
            if (!Directory.EnumerateFiles(cache, "python3-skimage_*.deb").Any() && Run("apt-get", "download python3-skimage", cache) is { } download)
                return (null, $"real test images: `apt-get download python3-skimage` failed ({download}); set FER_TEST_IMAGES to a folder with astronaut.png and camera.png");
            var deb = Directory.EnumerateFiles(cache, "python3-skimage_*.deb").FirstOrDefault();
            if (deb is null) return (null, "real test images: apt-get download left no python3-skimage .deb");
            if (Run("dpkg-deb", $"-x \"{deb}\" \"{Path.Combine(cache, "x")}\"", cache) is { } extract)
                return (null, $"real test images: dpkg-deb -x failed ({extract})");
            return Has(data) ? (data, "") : (null, $"real test images: the package holds no skimage/data/astronaut.png and camera.png under {data}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            return (null, $"real test images unavailable: {e.Message}; set FER_TEST_IMAGES to a folder with astronaut.png and camera.png");
        }
    }

    /// <summary>Runs a program; null on success, else a short reason.</summary>
    private static string? Run(string program, string arguments, string workingDirectory)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = workingDirectory, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        })!;
        var error = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000)) { process.Kill(); return "timed out after 120 s"; }
        return process.ExitCode == 0 ? null : $"exit {process.ExitCode}: {error.Result.Trim().Split('\n').LastOrDefault()}";
    }
}
