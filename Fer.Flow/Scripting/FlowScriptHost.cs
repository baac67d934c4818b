using FSharp.Compiler.Diagnostics;
using FSharp.Compiler.Interactive;
using Fer.Flow.Pipeline;
using Microsoft.FSharp.Core;

namespace Fer.Flow.Scripting;

/// <summary>
/// Evaluates a flow script in-process with F# Interactive (FSharp.Compiler.Service), referencing the running
/// Fer assemblies so the script's calls reach the same <see cref="FlowScript"/> capture.
/// </summary>
public static class FlowScriptHost
{
    private static readonly Lock Gate = new();

    /// <param name="flowOverrides">--set values without a dot (flow parameters).</param>
    public static FlowDefinition Load(string scriptPath, IReadOnlyDictionary<string, string> flowOverrides)
    {
        var full = Path.GetFullPath(scriptPath);
        if (!File.Exists(full))
            throw new FlowDefinitionException($"{scriptPath}: flow script not found");

        lock (Gate)
        {
            FlowScript.Begin(flowOverrides);
            FlowDefinition? flow;
            SortedDictionary<string, object> declared;
            try
            {
                Evaluate(full);
            }
            finally
            {
                (flow, declared) = FlowScript.End();
            }
            if (flow is null)
                throw new FlowDefinitionException($"{scriptPath}: the script never called `flow \"name\" [ stages ]`");
            foreach (var name in flowOverrides.Keys)
                if (!declared.ContainsKey(name))
                    throw new FlowDefinitionException(
                        $"--set {name}: {Path.GetFileName(scriptPath)} has no parameter '{name}'; its parameters: {string.Join(", ", declared.Keys)} (stage settings are set as stage.name=value)");
            foreach (var (k, v) in declared) flow.Parameters[k] = v;
            flow.ScriptPath = full;
            return flow;
        }
    }

    private static void Evaluate(string scriptPath)
    {
        var config = Shell.FsiEvaluationSession.GetDefaultConfiguration();
        var argv = new[]
        {
            "fsi.exe", "--noninteractive", "--nologo", "--gui-", "--quiet",
            "-r:" + typeof(FlowScript).Assembly.Location,
            "-r:" + typeof(Fer.Core.Data.FaceSet).Assembly.Location,
        };
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
