namespace Fer.Flow.Pipeline;

/// <summary>One member of the ensemble the train stage builds: a named model with its settings.</summary>
public sealed record MemberSpec(string Name, string Model, IReadOnlyDictionary<string, object> Settings);

/// <summary>A stage as a flow script declares it: its name, settings and (for train) members.</summary>
public sealed class StageSpec(string name)
{
    public string Name { get; } = name;
    public Dictionary<string, object> Settings { get; } = new(StringComparer.Ordinal);
    public List<MemberSpec> Members { get; } = [];
}

/// <summary>A flow: named stages in order, and the flow-level parameters the script declared.</summary>
public sealed class FlowDefinition(string name, IReadOnlyList<StageSpec> stages)
{
    public string Name { get; } = name;
    public IReadOnlyList<StageSpec> Stages { get; } = stages;
    public string? ScriptPath { get; set; }
    /// <summary>Flow parameters (declared with <c>param</c> in the script) and their values in force.</summary>
    public SortedDictionary<string, object> Parameters { get; } = new(StringComparer.Ordinal);
}
