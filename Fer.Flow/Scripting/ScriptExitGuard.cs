namespace Fer.Flow.Scripting;

/// <summary>
/// A flow script is code: it can call <c>exit 0</c> or <c>Environment.Exit</c> while it is being evaluated, which would
/// end fer with the script's exit code and no word of why. The process cannot be kept alive once Exit is called, but
/// while a script is evaluated this guard turns such an exit into exit 2 with one line naming the script.
/// </summary>
internal static class ScriptExitGuard
{
    private static string? evaluating;

    static ScriptExitGuard() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        if (Volatile.Read(ref evaluating) is not { } script) return;
        Console.Error.WriteLine($"{script}: the script ended the process while it was being evaluated (exit code {Environment.ExitCode}); a flow script defines a flow and returns");
        Environment.ExitCode = 2;
    };

    public static Scope While(string scriptPath)
    {
        Volatile.Write(ref evaluating, scriptPath);
        return new Scope();
    }

    public readonly struct Scope : IDisposable
    {
        public void Dispose() => Volatile.Write(ref evaluating, null);
    }
}
