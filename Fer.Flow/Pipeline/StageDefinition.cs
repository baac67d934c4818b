using Fer.Core.Models;

namespace Fer.Flow.Pipeline;

/// <summary>How many producers an input port takes: exactly one, at most one, or all there are (a join).</summary>
public enum PortArity { One, Optional, All }

/// <summary>
/// What a stage consumes: the output record type of another stage (or a base type of several). The planner
/// binds each port to its producers by type, so a flow names no files and the script's order does not matter.
/// </summary>
public sealed record InputPort(Type Type, PortArity Arity)
{
    public static InputPort One<T>() => new(typeof(T), PortArity.One);
    public static InputPort Optional<T>() => new(typeof(T), PortArity.Optional);
    public static InputPort All<T>(bool atLeastOne = true) => new(typeof(T), atLeastOne ? PortArity.All : PortArity.Optional) { Many = true };

    /// <summary>True when every producer is bound (a join); else one.</summary>
    public bool Many { get; init; }
}

/// <summary>A stage output that reports metrics: a typed record written to the run record and metrics.json.</summary>
public interface IHasMetrics
{
    object Metrics { get; }
}

/// <summary>A node another takes its input from: its name, what it makes and its bound settings.</summary>
public sealed record BoundProducer(string Node, Type Output, object Settings);

/// <summary>The nodes a node takes its inputs from, and the flow's models (for <see cref="IStageDefinition.CheckBound"/>).</summary>
public sealed record BoundInputs(IReadOnlyList<BoundProducer> Producers, PlanScope Scope)
{
    /// <summary>The producers whose output is a <typeparamref name="T"/>, in the planner's order.</summary>
    public IReadOnlyList<BoundProducer> Making<T>() => [.. Producers.Where(p => typeof(T).IsAssignableFrom(p.Output))];
}

/// <summary>What the planner knows when it binds a node's settings: the flow's models.</summary>
public sealed record PlanScope(ModelCatalog Models);

/// <summary>
/// A kind of stage, as the engine sees it. Built-in stages derive from <see cref="Stage{TInputs, TSettings, TOutput}"/>;
/// stages written in a flow script are <see cref="Scripting.ScriptStage{TInput, TSettings, TOutput}"/>.
/// </summary>
public interface IStageDefinition
{
    /// <summary>The stage's kind (ingest, split, train-member, ...); a node's name defaults to it.</summary>
    string Kind { get; }

    /// <summary>
    /// The identity of the code that computes the stage, taken from the code itself (<see cref="Fer.Core.CodeIdentity"/>
    /// for Fer's stages, the script's hash for a script's): it enters every fingerprint, so an entry made by other code
    /// is never served.
    /// </summary>
    string CodeIdentity { get; }

    Type SettingsType { get; }
    Type OutputType { get; }
    IReadOnlyList<InputPort> Inputs { get; }

    /// <summary>Recomputed on every run and never cached, because it describes the run itself (the report).</summary>
    bool Volatile => false;

    /// <summary>Hash of the code that defines the stage when it is not Fer's (a flow script's content).</summary>
    string? SourceHash => null;

    /// <summary>Binds the node's settings record from the script's and the command line's values (plan time).</summary>
    object BindSettings(IReadOnlyDictionary<string, object> given, string owner, PlanScope scope) =>
        SettingsBinder.Bind(SettingsType, null, given, owner);

    /// <summary>More material for the fingerprint (e.g. the source hash of the model a member trains).</summary>
    string? ExtraFingerprint(object settings, PlanScope scope) => null;

    /// <summary>Input files outside the cache whose content enters the fingerprint (ingest's CSV files).</summary>
    IReadOnlyList<string> InputFiles(object settings) => [];

    /// <summary>
    /// Checks, at plan time once the graph is bound, settings that name other parts of the flow (a member to
    /// explain, to draw): a name the flow lacks is a <see cref="FlowDefinitionException"/> listing the valid ones.
    /// </summary>
    void CheckBound(object settings, BoundInputs inputs, string owner) { }

    Task<object> RunAsync(StageContext context, object settings);
}

/// <summary>
/// A built-in stage: a typed function from its inputs (<typeparamref name="TInputs"/>: one stage's output, or a record
/// marked <see cref="IStageInputs"/> whose parameters are its ports, see <see cref="StagePorts"/>) and its settings to
/// its output. Its ports are read from <typeparamref name="TInputs"/>, the same shape as a flow script's stage.
/// </summary>
public abstract class Stage<TInputs, TSettings, TOutput> : IStageDefinition
    where TInputs : class where TSettings : class, new() where TOutput : class
{
    private static readonly StagePorts Ports = StagePorts.Of(typeof(TInputs));

    public abstract string Kind { get; }
    /// <summary>The IL of this stage's type and of everything it reaches in Fer (computed once per process).</summary>
    public string CodeIdentity => Fer.Core.CodeIdentity.Of(GetType());
    public Type SettingsType => typeof(TSettings);
    public Type OutputType => typeof(TOutput);
    public IReadOnlyList<InputPort> Inputs => Ports.Ports;
    public virtual bool Volatile => false;

    public virtual object BindSettings(IReadOnlyDictionary<string, object> given, string owner, PlanScope scope) =>
        SettingsBinder.Bind(typeof(TSettings), null, given, owner);

    public virtual string? ExtraFingerprint(object settings, PlanScope scope) => null;

    public IReadOnlyList<string> InputFiles(object settings) => InputFiles((TSettings)settings);

    public void CheckBound(object settings, BoundInputs inputs, string owner) => CheckBound((TSettings)settings, inputs, owner);
    protected virtual void CheckBound(TSettings settings, BoundInputs inputs, string owner) { }
    protected virtual IReadOnlyList<string> InputFiles(TSettings settings) => [];

    public async Task<object> RunAsync(StageContext context, object settings) =>
        await RunAsync(context, (TInputs)Ports.Fetch(context.Upstream, context.Node), (TSettings)settings);

    protected abstract Task<TOutput> RunAsync(StageContext ctx, TInputs inputs, TSettings settings);
}
