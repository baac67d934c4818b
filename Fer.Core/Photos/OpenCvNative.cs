using System.Text.RegularExpressions;

namespace Fer.Core.Photos;

/// <summary>
/// Whether OpenCV's native runtime (OpenCvSharpExtern) loads, and if not, which system library is missing and which
/// Debian package brings it. OpenCV's official Linux runtime links GTK 3, which a fresh server lacks; the failure then
/// surfaces on the first OpenCV call as a type-initializer error, and it is permanent for the process. Photo commands
/// ask here first, so the user gets one line instead of a stack trace.
/// </summary>
public static partial class OpenCvNative
{
    private static readonly Lazy<string?> LoadProblem = new(Probe, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Debian packages (bookworm names) of the libraries OpenCvSharpExtern needs that a minimal system lacks.</summary>
    private static readonly IReadOnlyDictionary<string, string> DebianPackages = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["libgtk-3.so.0"] = "libgtk-3-0",
        ["libgdk-3.so.0"] = "libgtk-3-0",
        ["libgdk_pixbuf-2.0.so.0"] = "libgdk-pixbuf-2.0-0",
        ["libglib-2.0.so.0"] = "libglib2.0-0",
        ["libgobject-2.0.so.0"] = "libglib2.0-0",
        ["libcairo.so.2"] = "libcairo2",
        ["libpango-1.0.so.0"] = "libpango-1.0-0",
    };

    /// <summary>Null when OpenCV loads; otherwise one line saying what is missing and how to install it.</summary>
    public static string? Problem => LoadProblem.Value;

    private static string? Probe()
    {
        try
        {
            using var probe = new OpenCvSharp.Mat(1, 1, OpenCvSharp.MatType.CV_8UC1);
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException)
        {
            return Describe(e);
        }
    }

    /// <summary>The one line for a failed load: the missing library named in the loader's message, and its package.</summary>
    public static string Describe(Exception failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        var message = failure.GetBaseException().Message;
        // The dynamic loader's own words, e.g. "libgtk-3.so.0: cannot open shared object file: No such file or directory".
        var missing = LoaderError().Matches(message).Select(m => m.Groups["library"].Value)
            .FirstOrDefault(l => !l.Contains("OpenCvSharpExtern", StringComparison.Ordinal));
        if (missing is null)
            return $"OpenCV's native library (OpenCvSharpExtern) does not load: {FirstLine(message)}";
        var install = DebianPackages.TryGetValue(missing, out var package)
            ? $"on Debian or Ubuntu: apt-get install {package}"
            : $"install the package that provides {missing}";
        return $"OpenCV's native library (OpenCvSharpExtern) cannot load {missing}, which is missing ({install})";
    }

    private static string FirstLine(string text)
    {
        var line = text.Split('\n', 2)[0].Trim();
        return line.Length <= 300 ? line : line[..300] + "...";
    }

    [GeneratedRegex(@"(?<library>[A-Za-z0-9_.+-]+\.so(?:\.[0-9]+)*): (?:cannot open shared object file|file too short)")]
    private static partial Regex LoaderError();
}
