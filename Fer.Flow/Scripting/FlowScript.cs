using Fer.Core.Models;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Scripting;

/// <summary>A key and value in a stage's or member's settings, as a script writes it ("epochs" => 5).</summary>
public sealed record Setting(string Key, object Value);

/// <summary>An ensemble member as a script declares it: a name, a registered model and its settings.</summary>
public sealed record MemberSpec(string Name, string Model, IReadOnlyList<Setting> Settings);

/// <summary>What a flow's list holds: one node, or the nodes of a group (train's members).</summary>
public sealed class FlowItem(IReadOnlyList<NodeSpec> nodes)
{
    public IReadOnlyList<NodeSpec> Nodes { get; } = nodes;

    /// <summary>Takes this item's inputs from these nodes (when more than one node makes what it needs).</summary>
    public FlowItem From(IEnumerable<string> producers)
    {
        foreach (var n in Nodes) n.From.AddRange(producers);
        return this;
    }

    /// <summary>Asks Slurm for more for these nodes' jobs (sbatch arguments: --gres=gpu:1, --time=04:00:00, --mem=16G).</summary>
    public FlowItem Slurm(IEnumerable<string> sbatchArguments)
    {
        var arguments = sbatchArguments.ToList();
        foreach (var a in arguments)
            if (!a.StartsWith("--", StringComparison.Ordinal) || a.Contains('\n'))
                throw new FlowDefinitionException($"slurm [ {a} ]: give sbatch options as --name=value");
        foreach (var n in Nodes) n.SlurmArguments.AddRange(arguments);
        return this;
    }
}

/// <summary>
/// The API flow scripts call (through the F# prelude flows/Fer.fsx). A script declares its parameters with
/// <see cref="Param{T}"/>, may define stages and models, and ends with <see cref="Define"/>. The host evaluates
/// one script at a time, so the capture is a simple locked static.
/// </summary>
public static class FlowScript
{
    private static readonly Lock Gate = new();
    private static Capture? _current;

    internal sealed class Capture(IReadOnlyDictionary<string, string> overrides, string scriptHash)
    {
        public IReadOnlyDictionary<string, string> Overrides { get; } = overrides;
        public string ScriptHash { get; } = scriptHash;
        public SortedDictionary<string, object> Declared { get; } = new(StringComparer.Ordinal);
        public StageCatalog Stages { get; } = StageCatalog.Default;
        public ModelCatalog Models { get; set; } = ModelCatalog.BuiltIn;
        public List<FlowDefinition> Flows { get; } = [];
        public List<SweepAxis> Sweeps { get; } = [];
    }

    internal static void Begin(IReadOnlyDictionary<string, string> flowOverrides, string scriptHash)
    {
        lock (Gate) _current = new Capture(flowOverrides, scriptHash);
    }

    internal static Capture End()
    {
        lock (Gate)
        {
            var c = _current ?? throw new InvalidOperationException("no flow script is being evaluated");
            _current = null;
            return c;
        }
    }

    private static Capture Current => _current
        ?? throw new InvalidOperationException("flow scripts are run by the fer host: fer run FLOW.fsx");

    /// <summary>A flow parameter with its default; --set name=value on the command line overrides it.</summary>
    public static T Param<T>(string name, T defaultValue) where T : notnull
    {
        var c = Current;
        T value = defaultValue;
        if (c.Overrides.TryGetValue(name, out var text))
        {
            if (defaultValue is not (int or long or double or bool or string))
                throw new FlowDefinitionException($"parameter '{name}': unsupported type {typeof(T).Name}");
            object? parsed;
            try { parsed = SettingValue.Convert(text, typeof(T)); }
            catch (OverflowException) { parsed = null; }
            if (parsed is double d && !double.IsFinite(d)) parsed = null;
            if (parsed is null)
                throw new FlowDefinitionException(
                    $"--set {name}={text}: parameter '{name}' expects {TypeText(typeof(T))} (default {SettingsSchema.Canonical(defaultValue)})");
            value = (T)parsed;
        }
        c.Declared[name] = value;
        return value;
    }

    /// <summary>A node of the stage of this kind (built-in or defined by the script).</summary>
    public static FlowItem Stage(string kind, IEnumerable<Setting> settings)
    {
        var spec = new NodeSpec(kind, Current.Stages.Get(kind));
        foreach (var s in settings) spec.Settings[s.Key] = s.Value;
        return new FlowItem([spec]);
    }

    public static MemberSpec Member(string name, string model, IEnumerable<Setting> settings) => new(name, model, settings.ToList());

    /// <summary>One train-member node per member (train.NAME); the shared settings apply to each unless it sets its own.</summary>
    public static FlowItem Train(IEnumerable<MemberSpec> members, IEnumerable<Setting> shared)
    {
        var stage = Current.Stages.Get(Stages.TrainMemberStage.KindName);
        var common = shared.ToList();
        var nodes = members.Select(m =>
        {
            var spec = new NodeSpec($"train.{m.Name}", stage) { Group = "train" };
            foreach (var s in common) spec.Settings[s.Key] = s.Value;
            foreach (var s in m.Settings) spec.Settings[s.Key] = s.Value;
            spec.Settings["model"] = m.Model;
            return spec;
        }).ToList();
        if (nodes.Count == 0) throw new FlowDefinitionException("train lists no members: add model \"name\" \"seed-cnn\" [ ... ]");
        return new FlowItem(nodes);
    }

    /// <summary>
    /// Defines a stage in the script: a function from its typed settings (a record; its fields are the stage's
    /// settings, defaults as given) and typed input to its typed output. The input is one stage's output, a tuple of
    /// several, or a record marked IStageInputs; its ports follow from that type (<see cref="StagePorts"/>). The
    /// stage's fingerprint includes the script's content.
    /// </summary>
    public static void DefineStage<TInput, TSettings, TOutput>(string name, TSettings defaults, Func<StageContext, TSettings, TInput, TOutput> run)
        where TInput : class where TSettings : class where TOutput : class
    {
        var c = Current;
        c.Stages.Add(new ScriptStage<TInput, TSettings, TOutput>(name, defaults, run, c.ScriptHash));
    }

    /// <summary>Registers a model written in the script under a name members can use; its fingerprint includes the script.</summary>
    public static void RegisterModel(string name, ModelFamily family, IEnumerable<Setting> hyperparameters,
        Func<int, int, IReadOnlyDictionary<string, double>, FerModel> create)
    {
        var c = Current;
        var hyper = hyperparameters.ToDictionary(h => h.Key, h => (h.Value is string ? null : SettingValue.Number(h.Value))
            ?? throw new FlowDefinitionException($"model {name}: hyperparameter {h.Key} must be a number, got {h.Value}"), StringComparer.Ordinal);
        try { c.Models = c.Models.With(new ModelEntry(name, family, hyper, create, c.ScriptHash)); }
        catch (ArgumentException e) { throw new FlowDefinitionException(e.Message); }
    }

    /// <summary>
    /// Sweeps a parameter or setting (its key as --set writes it: epochs, train.cnn.lr) over these values: `fer run`
    /// then runs one trial per combination of the swept values.
    /// </summary>
    public static void Sweep(string key, IEnumerable<object> values)
    {
        var texts = values.Select(SettingsSchema.Canonical).ToList();
        if (texts.Count == 0) throw new FlowDefinitionException($"sweep {key}: no values");
        Current.Sweeps.Add(Pipeline.Sweep.ParseAxis($"{key}={string.Join(",", texts)}"));
    }

    public static FlowDefinition Define(string name, IEnumerable<FlowItem> items)
    {
        var c = Current;
        var flow = new FlowDefinition(name, items.SelectMany(i => i.Nodes).ToList()) { Models = c.Models, Catalog = c.Stages };
        c.Flows.Add(flow);
        return flow;
    }

    private static string TypeText(Type t) =>
        t == typeof(int) || t == typeof(long) ? "an integer" : t == typeof(double) ? "a number" : t == typeof(bool) ? "true or false" : "text";
}

/// <summary>A stage a flow script defines: a function of its input and settings, fingerprinted with the script.</summary>
public sealed class ScriptStage<TInput, TSettings, TOutput>(string kind, TSettings defaults,
    Func<StageContext, TSettings, TInput, TOutput> run, string scriptHash) : IStageDefinition
    where TInput : class where TSettings : class where TOutput : class
{
    public string Kind { get; } = kind;
    public string CodeIdentity { get; } = scriptHash;
    public Type SettingsType => typeof(TSettings);
    public Type OutputType => typeof(TOutput);
    public IReadOnlyList<InputPort> Inputs => StagePorts.Of(typeof(TInput)).Ports;
    public string? SourceHash { get; } = scriptHash;

    public object BindSettings(IReadOnlyDictionary<string, object> given, string owner, PlanScope scope) =>
        SettingsBinder.Bind(typeof(TSettings), defaults, given, owner);

    public Task<object> RunAsync(StageContext context, object settings) =>
        Task.Run<object>(() => run(context, (TSettings)settings, (TInput)StagePorts.Of(typeof(TInput)).Fetch(context.Upstream, context.Node)),
            context.CancellationToken);
}
