using System.Diagnostics;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>
/// The real `fer` program in a child process (fer.dll is copied next to the tests), so it can be killed. The child
/// starts with SIGINT and SIGTERM at their default dispositions, whatever the test runner inherited: a shell starts a
/// background job (`bash .ci/run &`) with SIGINT ignored, a child inherits that, and fer rightly respects an inherited
/// ignore (as Python and the shells do), so a signal test would otherwise depend on how its runner was started.
/// </summary>
public sealed class FerProcess : IDisposable
{
    private readonly Process _process;

    /// <summary>coreutils' env resets dispositions before it execs (same pid, so signals reach fer); since 8.31.</summary>
    private static readonly Lazy<bool> EnvResetsSignals = new(() =>
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo("env", ["--default-signal=INT,TERM", "true"]) { RedirectStandardError = true, UseShellExecute = false })!;
            probe.WaitForExit();
            return probe.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    });

    /// <summary>Why signals sent to the child may not arrive as a terminal's would, or null when they will.</summary>
    public static string? SignalProblem => EnvResetsSignals.Value ? null
        : "`env --default-signal` (coreutils 8.31 or later) is not available, so the child would inherit the runner's signal dispositions";

    public FerProcess(params string[] args) : this(new Dictionary<string, string>(), args) { }

    /// <summary>fer with <paramref name="environment"/> added to this process's environment.</summary>
    public FerProcess(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var fer = Path.Combine(AppContext.BaseDirectory, "fer.dll");
        var start = new ProcessStartInfo(EnvResetsSignals.Value ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        if (EnvResetsSignals.Value)
        {
            start.ArgumentList.Add("--default-signal=INT,TERM");
            start.ArgumentList.Add("dotnet");
        }
        start.ArgumentList.Add(fer);
        foreach (var a in args) start.ArgumentList.Add(a);
        _process = Process.Start(start) ?? throw new InvalidOperationException("could not start fer");
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (Output) Output.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (Output) Output.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public List<string> Output { get; } = [];
    public int Pid => _process.Id;

    /// <summary>Sends a signal (INT, TERM) as a terminal or a service manager would.</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", ["-" + name, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }
    public bool HasExited => _process.HasExited;

    /// <summary>Waits until a line of the run's log contains all the given texts (or the process ends).</summary>
    public bool WaitForLog(Func<string?> logPath, TimeSpan timeout, params string[] texts)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            var path = logPath();
            if (path is not null && File.Exists(path))
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                string? line;
                while ((line = reader.ReadLine()) is not null)
                    if (texts.All(line.Contains)) return true;
            }
            Thread.Sleep(100);
        }
        return false;
    }

    /// <summary>kill -9: no cleanup code of the process runs.</summary>
    public void KillHard()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) { KillHard(); throw new TimeoutException("fer did not finish: " + string.Join('\n', Output.TakeLast(20))); }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited) KillHard();
        _process.Dispose();
    }
}
