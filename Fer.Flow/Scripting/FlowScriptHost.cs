using System.Text;
using System.Text.RegularExpressions;
using FSharp.Compiler.Diagnostics;
using FSharp.Compiler.Interactive;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;
using Microsoft.FSharp.Core;

namespace Fer.Flow.Scripting;

/// <summary>
/// Evaluates a flow script in-process with F# Interactive (FSharp.Compiler.Service), referencing the running
/// Fer assemblies so the script's calls reach the same <see cref="FlowScript"/> capture. A flow script is code
/// that runs with the user's rights: `run` and `stages` both evaluate it.
/// </summary>
public static partial class FlowScriptHost
{
    private static readonly Lock Gate = new();

    [GeneratedRegex("""^\s*#load\s+((?:@?"[^"]*"\s*)+)""", RegexOptions.Multiline)]
    private static partial Regex LoadDirective();

    [GeneratedRegex("@?\"([^\"]*)\"")]
    private static partial Regex QuotedPath();

    /// <param name="flowOverrides">--set values without a dot (flow parameters).</param>
    public static FlowDefinition Load(string scriptPath, IReadOnlyDictionary<string, string> flowOverrides)
    {
        var full = Path.GetFullPath(scriptPath);
        if (!File.Exists(full))
            throw new FlowDefinitionException(Directory.Exists(full) ? $"{scriptPath}: is a directory, not a flow script" : $"{scriptPath}: flow script not found");
        RequireScriptFile(scriptPath);

        lock (Gate)
        {
            var hash = ScriptHash(full);
            FlowScript.Begin(flowOverrides, hash);
            FlowScript.Capture capture;
            try
            {
                using var guard = ScriptExitGuard.While(scriptPath);
                Run(full, hash);
            }
            finally
            {
                capture = FlowScript.End();
            }
            if (capture.Flows.Count == 0)
                throw new FlowDefinitionException($"{scriptPath}: the script never called `flow \"name\" [ stages ]`");
            if (capture.Flows.Count > 1)
                throw new FlowDefinitionException($"{scriptPath}: the script defines {capture.Flows.Count} flows ({string.Join(", ", capture.Flows.Select(f => f.Name))}); a script defines one");
            var flow = capture.Flows[0];
            foreach (var name in flowOverrides.Keys)
                if (!capture.Declared.ContainsKey(name))
                    throw new FlowDefinitionException(
                        $"--set {name}: {Path.GetFileName(scriptPath)} has no parameter '{name}'; its parameters: {string.Join(", ", capture.Declared.Keys)} (stage settings are set as stage.name=value)");
            foreach (var (k, v) in capture.Declared) flow.Parameters[k] = v;
            flow.Sweeps.AddRange(capture.Sweeps);
            flow.ScriptPath = full;
            flow.ScriptHash = hash;
            return flow;
        }
    }

    /// <summary>A flow script is a few kilobytes of F#; a #loaded library a few hundred at most.</summary>
    public const long MaxScriptBytes = 4L << 20;

    /// <summary>
    /// Only regular files are read as scripts: a FIFO would block the read forever and /dev/zero never end (both seen).
    /// One line naming the file, as a <see cref="FlowDefinitionException"/>.
    /// </summary>
    private static void RequireScriptFile(string path)
    {
        var stat = Fer.Core.Storage.FileStat.Of(path);
        if (stat.Kind != Fer.Core.Storage.FileKind.Regular)
            throw new FlowDefinitionException($"{path}: {Fer.Core.Storage.FileStat.Describe(stat.Kind)}; a flow script must be a regular file");
        if (stat.Size > MaxScriptBytes)
            throw new FlowDefinitionException($"{path}: {stat.Size:N0} bytes, more than a flow script holds ({MaxScriptBytes:N0} at most)");
    }

    /// <summary>SHA-256 over the script and, recursively, every file it #loads (path and content).</summary>
    public static string ScriptHash(string scriptPath)
    {
        var seen = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var pending = new Stack<string>([Path.GetFullPath(scriptPath)]);
        while (pending.Count > 0)
        {
            var file = pending.Pop();
            if (seen.ContainsKey(file) || !File.Exists(file)) continue;
            RequireScriptFile(file);
            var text = File.ReadAllText(file);
            seen[file] = Hashing.Sha256Hex(text);
            foreach (Match m in LoadDirective().Matches(text))
                foreach (Match q in QuotedPath().Matches(m.Groups[1].Value))
                {
                    var loaded = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, q.Groups[1].Value));
                    // "Fer.fsx" missing beside the script is the vocabulary shipped with fer (see FlowVocabulary).
                    if (!File.Exists(loaded) && q.Groups[1].Value == FlowVocabulary.FileName && FlowVocabulary.Shipped is { } shipped) loaded = shipped;
                    pending.Push(loaded);
                }
        }
        var material = new StringBuilder();
        foreach (var (file, sha) in seen) material.Append(Path.GetFileName(file)).Append(' ').Append(sha).Append('\n');
        return Hashing.Sha256Hex(material.ToString());
    }

    /// <summary>How the last script was evaluated (for the log and the benchmark).</summary>
    public static string LastEvaluation { get; private set; } = "";

    private static void Run(string scriptPath, string hash)
    {
        if (Environment.GetEnvironmentVariable("FER_SCRIPT_CACHE") == "off") { Evaluate(scriptPath); LastEvaluation = "interpreted"; return; }
        var (assembly, cached) = ScriptCompiler.LoadOrCompile(scriptPath, hash);
        LastEvaluation = cached ? "compiled script from cache" : "compiled script";
        var entry = assembly.EntryPoint ?? throw new FlowDefinitionException($"{scriptPath}: the compiled script has no entry point");
        try
        {
            entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]);
        }
        catch (System.Reflection.TargetInvocationException e)
        {
            var ex = e.InnerException ?? e;
            while (ex is System.Reflection.TargetInvocationException or TypeInitializationException && ex.InnerException is { } inner) ex = inner;
            if (ex is FlowDefinitionException) throw ex;
            throw new FlowDefinitionException($"{scriptPath}: {ex.GetType().Name}: {ex.Message}");
        }
    }

    private static void Evaluate(string scriptPath)
    {
        var config = Shell.FsiEvaluationSession.GetDefaultConfiguration();
        string[] argv =
        [
            "fsi.exe", "--noninteractive", "--nologo", "--gui-", "--quiet",
            "-r:" + typeof(FlowScript).Assembly.Location,
            "-r:" + typeof(Fer.Core.Data.FaceSet).Assembly.Location,
            "-r:" + typeof(TorchSharp.torch).Assembly.Location,
            .. FlowVocabulary.IncludeDirFor(scriptPath) is { } include ? new[] { "-I:" + include } : Array.Empty<string>(),
        ];
        using var input = new StringReader("");
        using var output = new StringWriter();
        using var session = Shell.FsiEvaluationSession.Create(config, argv, input, output, output,
            collectible: false, legacyReferenceResolver: null);
        var (result, diagnostics) = session.EvalScriptNonThrowing(scriptPath);
        var errors = diagnostics.Where(d => d.Severity.IsError).ToList();
        if (errors.Count > 0)
            throw new FlowDefinitionException(string.Join(Environment.NewLine, errors.Select(Describe)));
        if (result is FSharpChoice<Unit, Exception>.Choice2Of2 failure)
        {
            var ex = failure.Item;
            while (ex is System.Reflection.TargetInvocationException { InnerException: { } inner }) ex = inner;
            if (ex is FlowDefinitionException) throw ex;
            throw new FlowDefinitionException($"{scriptPath}: {ex.GetType().Name}: {ex.Message}");
        }
    }

    private static string Describe(FSharpDiagnostic d) =>
        $"{d.Range.FileName}({d.Range.StartLine},{d.Range.StartColumn + 1}): error FS{d.ErrorNumber:0000}: {d.Message}";
}
