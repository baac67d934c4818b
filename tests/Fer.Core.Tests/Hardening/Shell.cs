using System.Diagnostics;

namespace Fer.Core.Tests.Hardening;

internal static class Shell
{
    /// <summary>Runs a command (mkfifo, ln, touch) and fails the test if it fails.</summary>
    public static void Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {p.StandardError.ReadToEnd()}");
    }

    /// <summary>Runs <paramref name="action"/> on a thread and fails (instead of hanging) when it takes longer than the limit.</summary>
    public static T WithinSeconds<T>(double seconds, Func<T> action)
    {
        var task = Task.Factory.StartNew(action, TaskCreationOptions.LongRunning);
        if (!task.Wait(TimeSpan.FromSeconds(seconds))) throw new TimeoutException($"did not return within {seconds} s (it hangs)");
        return task.Result;
    }
}
