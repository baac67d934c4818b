using System.Diagnostics;

namespace Fer.Flow.Tests.Hardening;

internal static class Shell
{
    /// <summary>Runs a command and returns its exit code and standard output; fails the test if it cannot start.</summary>
    public static (int Code, string Output) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    /// <summary>Fails (instead of hanging the suite) when the task takes longer than the limit.</summary>
    public static async Task<T> WithinSeconds<T>(double seconds, Task<T> task)
    {
        if (await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(seconds))) != task)
            throw new TimeoutException($"did not return within {seconds} s (it hangs)");
        return await task;
    }
}
