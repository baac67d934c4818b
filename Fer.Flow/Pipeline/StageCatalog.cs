namespace Fer.Flow.Pipeline;

/// <summary>The stages a flow may name.</summary>
public sealed class StageCatalog(IEnumerable<IStage> stages)
{
    /// <summary>Fer's stages, in their usual order.</summary>
    public static StageCatalog Default { get; } = new([
        new Stages.IngestStage(), new Stages.AugmentStage(), new Stages.SplitStage(), new Stages.TrainStage(),
        new Stages.PredictStage(), new Stages.VisualizeStage(), new Stages.ReportStage(),
    ]);

    private readonly Dictionary<string, IStage> _stages = stages.ToDictionary(s => s.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _stages.Keys;

    public IStage Get(string name) => _stages.TryGetValue(name, out var s)
        ? s
        : throw new FlowDefinitionException($"unknown stage '{name}'; known stages: {string.Join(" ", _stages.Keys)}");
}
