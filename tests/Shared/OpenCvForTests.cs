using System.Diagnostics;
using Fer.Core.Photos;

namespace Fer.Tests.Shared;

/// <summary>
/// The one guard every test that touches OpenCV goes through first, in both test assemblies. OpenCV's official Linux
/// runtime links GTK 3, which a fresh Debian machine lacks, and a failed load is permanent for the process (a type
/// initializer), so as root with apt the guard installs GTK 3 (and opencv-data, for the Haar cascades) before anything
/// loads OpenCV; elsewhere the test skips with <see cref="OpenCvNative.Problem"/>, the line `fer predict` prints.
/// </summary>
public static class OpenCvForTests
{
    private static readonly Lazy<string?> Problem = new(() =>
    {
        InstallWhereMissing();
        return OpenCvNative.Problem;
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Skips the calling test, with the reason, unless OpenCV's native library loads (after installing it where we may).</summary>
    public static void SkipUnlessLoads() => Skip.If(Problem.Value is not null, Problem.Value);

    private static void InstallWhereMissing()
    {
        try
        {
            if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return;
            var (_, libraries) = Exec("ldconfig", "-p");
            if (libraries.Contains("libgtk-3.so.0", StringComparison.Ordinal) && File.Exists(CascadeFaceFinder.DefaultCascade)) return;
            string[] install = ["install", "-y", "-q", "--no-install-recommends", "libgtk-3-0", "opencv-data"];
            if (Exec("apt-get", install).Code != 0 && Exec("apt-get", "update", "-q").Code == 0) Exec("apt-get", install);
        }
        catch (System.ComponentModel.Win32Exception) { } // no ldconfig or apt-get: OpenCvNative.Problem says what is missing
    }

    /// <summary>Runs a program to its end (at most 5 minutes) with the environment apt needs unattended.</summary>
    public static (int Code, string Output) Exec(string file, params string[] args) => ExecIn("/", file, args);

    public static (int Code, string Output) ExecIn(string workingDirectory, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); return (-1, "timed out"); }
        return (p.ExitCode, stdout.Result + stderr);
    }
}
