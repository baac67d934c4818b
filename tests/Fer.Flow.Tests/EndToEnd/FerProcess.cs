using System.Diagnostics;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>The real `fer` program in a child process (fer.dll is copied next to the tests), so it can be killed.</summary>
public sealed class FerProcess : IDisposable
{
    private readonly Process _process;

    public FerProcess(params string[] args)
    {
        var fer = Path.Combine(AppContext.BaseDirectory, "fer.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
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
