using System.Diagnostics;

namespace Fer.Flow.Tests.Photos;

/// <summary>Debian's python3 with python3-torch, where installed: it checks `fer export` folders with python/fer_export.py.</summary>
public static class PythonTorch
{
    private const string Python = "/usr/bin/python3";

    /// <summary>Why PyTorch cannot be used here (null when it can).</summary>
    public static string? Missing { get; } = Probe();

    private static string? Probe()
    {
        if (!File.Exists(Python)) return "no /usr/bin/python3";
        using var probe = Process.Start(new ProcessStartInfo(Python, ["-c", "import torch"]) { RedirectStandardError = true, UseShellExecute = false })!;
        probe.StandardError.ReadToEnd();
        probe.WaitForExit();
        return probe.ExitCode == 0 ? null : "Debian's python3-torch is not installed (apt-get install python3-torch)";
    }

    /// <summary>Runs `python3 python/fer_export.py DIR` (SHA-256 sums, strict state_dict loads, logits within 1e-4) and returns its output.</summary>
    public static string CheckExport(string exportDir)
    {
        var start = new ProcessStartInfo(Python, [Path.Combine(Repo.Root, "python", "fer_export.py"), exportDir])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)));
        Assert.True(p.ExitCode == 0, stdout.Result + stderr);
        Console.WriteLine(stdout.Result);
        return stdout.Result;
    }
}
