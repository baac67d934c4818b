namespace Fer.Flow.Pipeline;

/// <summary>The stages a flow may name: Fer's own and those its script defines.</summary>
public sealed class StageCatalog
{
    private readonly Dictionary<string, IStageDefinition> _stages;

    public StageCatalog(IEnumerable<IStageDefinition> stages) =>
        _stages = stages.ToDictionary(s => s.Kind, StringComparer.Ordinal);

    /// <summary>Fer's stages. Adding a built-in stage means writing its file and listing it here.</summary>
    public static StageCatalog Default => new([
        new Stages.IngestStage(), new Stages.AugmentStage(), new Stages.SplitStage(), new Stages.TrainMemberStage(),
        new Stages.PredictStage(), new Stages.VisualizeStage(), new Stages.ReportStage(),
    ]);

    public IReadOnlyCollection<string> Names => _stages.Keys;

    public IStageDefinition Get(string kind) => _stages.TryGetValue(kind, out var s)
        ? s
        : throw new FlowDefinitionException($"unknown stage '{kind}'; known stages: {string.Join(" ", _stages.Keys)}");

    public void Add(IStageDefinition stage)
    {
        if (_stages.TryGetValue(stage.Kind, out var existing) && existing.SourceHash is null)
            throw new FlowDefinitionException($"stage '{stage.Kind}' is one of Fer's own; give the script's stage another name");
        _stages[stage.Kind] = stage;
    }

    /// <summary>The kinds of stage that make an output of this type.</summary>
    public IEnumerable<string> Producers(Type type) =>
        _stages.Values.Where(s => type.IsAssignableFrom(s.OutputType)).Select(s => s.Kind).Order(StringComparer.Ordinal);
}
