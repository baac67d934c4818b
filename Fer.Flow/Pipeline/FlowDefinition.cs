using Fer.Core.Models;

namespace Fer.Flow.Pipeline;

/// <summary>
/// A node of a flow as a script declares it: a name (the stage's kind unless renamed; ensemble members are
/// <c>train.&lt;member&gt;</c>), the stage, the settings given, and optionally the nodes its inputs come from
/// (when more than one node could feed it).
/// </summary>
public sealed class NodeSpec(string name, IStageDefinition stage)
{
    public string Name { get; } = name;
    public IStageDefinition Stage { get; } = stage;
    public Dictionary<string, object> Settings { get; } = new(StringComparer.Ordinal);
    /// <summary>Names of nodes to take inputs from, overriding the by-type binding for their output types.</summary>
    public List<string> From { get; } = [];
    /// <summary>The group a node belongs to (train for every member): --set train.x and --only train address them all.</summary>
    public string? Group { get; init; }
    /// <summary>More sbatch arguments for this node's job on Slurm (--gres=gpu:1 for a member that needs a GPU).</summary>
    public List<string> SlurmArguments { get; } = [];
}

/// <summary>A flow: its nodes (in any order), the parameters its script declared, and the models it can train.</summary>
public sealed class FlowDefinition(string name, IReadOnlyList<NodeSpec> nodes)
{
    public string Name { get; } = name;
    public IReadOnlyList<NodeSpec> Nodes { get; } = nodes;
    public string? ScriptPath { get; set; }
    /// <summary>SHA-256 of the script and every file it loads: enters the fingerprint of script-defined stages and models.</summary>
    public string? ScriptHash { get; set; }
    /// <summary>Flow parameters (declared with <c>param</c> in the script) and their values in force.</summary>
    public SortedDictionary<string, object> Parameters { get; } = new(StringComparer.Ordinal);
    public ModelCatalog Models { get; set; } = ModelCatalog.BuiltIn;
    /// <summary>The stages the flow could name (Fer's and its script's), for the planner's messages.</summary>
    public StageCatalog Catalog { get; set; } = StageCatalog.Default;
    /// <summary>The settings the script sweeps (`sweep "epochs" [10; 20]`); the command line's --sweep adds or replaces.</summary>
    public List<SweepAxis> Sweeps { get; } = [];
}
