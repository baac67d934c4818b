using System.Text.Json;
using Fer.Core.Ensemble;
using Fer.Core.Models;
using Fer.Core.Storage;
using Fer.Flow.Audit;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;
using Fer.Flow.Scripting;
using Fer.Flow.Stages;
using TorchSharp;

namespace Fer.Flow.Cli;

/// <summary>A member of a finished run, rebuilt from its hash-checked cache entry.</summary>
public sealed record LoadedMember(TrainedMember Trained, FerModel Model, double Weight);

/// <summary>A finished run's ensemble: members with their fitted weights, classes, image side and the test-time augmentation it used.</summary>
public sealed record RunEnsemble(RunSummary Run, IReadOnlyList<LoadedMember> Members, IReadOnlyList<string> ClassNames, int Side, TestTimeAugmentation Tta)
{
    public const string TrainHint = "train one with `fer run flows/quickstart.fsx` (or flows/hw3.fsx on your data)";

    /// <summary>
    /// The run named by <paramref name="run"/> (id, unique prefix or latest), or the latest finished run with a
    /// fitted ensemble. Members come from the run record's train-member reports and their cache entries, which are
    /// verified against their manifests' SHA-256 before a byte of weights is read; the weights from the predict
    /// stage's metrics. Problems are <see cref="FlowDefinitionException"/>s (exit 2) naming what to run.
    /// </summary>
    public static RunEnsemble Load(string artifacts, string? run, torch.Device device)
    {
        // Read under a share of the folder: fer gc cannot remove the entries while their weights are read.
        IDisposable? share;
        try { share = ArtifactsLock.ShareForReading(artifacts, TimeSpan.FromSeconds(120)); }
        catch (ArtifactsBusyException e) { throw new FlowDefinitionException(e.Message); }
        using var _ = share;
        var runs = RunCatalog.List(artifacts);
        RunSummary chosen;
        if (run is null or "latest")
        {
            chosen = runs.LastOrDefault(r => r.Status == RunStatus.Finished && r.Record is { } rec && rec.MetricsOf<EnsembleMetrics>().Any())
                ?? throw new FlowDefinitionException(
                    $"no finished run with a fitted ensemble in {Path.Combine(Path.GetFullPath(artifacts), "runs")}; {TrainHint}");
        }
        else
        {
            if (runs.Count == 0) throw new FlowDefinitionException($"no runs in {Path.Combine(Path.GetFullPath(artifacts), "runs")}; {TrainHint}");
            chosen = RunCatalog.Resolve(artifacts, run);
            if (chosen.Status != RunStatus.Finished)
                throw new FlowDefinitionException($"run {chosen.RunId} is {chosen.Status.Text()}, not finished; give a finished run (see `fer runs`) or {TrainHint}");
        }
        var record = chosen.Record ?? throw new FlowDefinitionException($"run {chosen.RunId}: run.json is missing or unreadable");
        var (ensembleNode, ensemble) = record.MetricsOf<EnsembleMetrics>().LastOrDefault();
        if (ensemble is null)
            throw new FlowDefinitionException($"run {chosen.RunId} fitted no ensemble (no predict stage in it); {TrainHint}");

        var cache = new StageCache(Path.Combine(artifacts, "cache"));
        var split = record.Stages.FirstOrDefault(s => s.Reports<SplitMetrics>())
            ?? throw new FlowDefinitionException($"run {chosen.RunId} has no split stage, so its classes and image side are unknown");
        var splitOutput = (SplitFaces)ReadEntry(cache, split, typeof(SplitFaces), record);
        FaceTableInfo table;
        try { table = ParquetTensorStore.ReadFaceTableInfoAsync(splitOutput.Train.Path).GetAwaiter().GetResult(); }
        catch (InvalidDataException e) { throw new FlowDefinitionException(e.Message); }
        var (side, classes) = (table.Side, table.ClassNames);
        if (classes.Count < 2) throw new FlowDefinitionException($"{splitOutput.Train.Path}: fewer than two class names in its metadata");

        var members = new List<LoadedMember>();
        ModelCatalog? scriptModels = null;
        try
        {
            foreach (var name in ensemble.Members)
            {
                var report = record.Stages.FirstOrDefault(s => s.Reports<MemberMetrics>() && (s.Stage == $"train.{name}" || s.Stage == name))
                    ?? throw new FlowDefinitionException($"run {chosen.RunId}: ensemble member {name} has no train-member report in run.json");
                var trained = (TrainedMember)ReadEntry(cache, report, typeof(TrainedMember), record);
                if (!ensemble.Weights.TryGetValue(name, out var weight) || !double.IsFinite(weight) || weight < 0)
                    throw new FlowDefinitionException($"run {chosen.RunId}: no valid ensemble weight for member {name}");
                var catalog = ModelCatalog.BuiltIn.Contains(trained.Model) ? ModelCatalog.BuiltIn
                    : ScriptModel(record, name, trained, ref scriptModels);
                var model = trained.Load(catalog, classes.Count, side, device);
                members.Add(new LoadedMember(trained, model, weight));
            }
        }
        catch
        {
            foreach (var m in members) m.Model.Dispose();
            throw;
        }
        if (members.Count == 0) throw new FlowDefinitionException($"run {chosen.RunId} ({ensembleNode}) lists no ensemble members");
        return new RunEnsemble(chosen, members, classes, side, ensemble.TtaUsed);
    }

    /// <summary>
    /// The catalog of the run's flow script, for a member whose model the script registers: the script is evaluated
    /// again (with the run's parameters) only if it still exists, and its model is used only if the script's hash
    /// (over it and every #loaded file) is the one the member was trained with, so the code that rebuilds the model
    /// is the code whose weights these are. Otherwise exit 2, saying what to run.
    /// </summary>
    private static ModelCatalog ScriptModel(RunRecord record, string member, TrainedMember trained, ref ModelCatalog? loaded)
    {
        string model = trained.Model, script = record.Script ?? "";
        string rerun = $"retrain the member to record it: {record.Command} --from train.{member}";
        if (trained.ModelSourceHash is null)
            throw new FlowDefinitionException($"member {member} is a '{model}', a model its flow script registers, trained before Fer recorded the script's hash; {rerun}");
        if (script.Length == 0 || !Path.IsPathFullyQualified(script))
            throw new FlowDefinitionException($"member {member} is a '{model}' from a flow script, but run {record.RunId} does not name its script");
        if (loaded is null)
        {
            try { loaded = LoadScriptModels(record, member, trained, script, model); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            { throw new FlowDefinitionException($"{script}: cannot read the flow script that defines model '{model}': {e.Message}"); }
        }
        if (!loaded.Contains(model))
            throw new FlowDefinitionException($"{script} no longer registers model '{model}' (member {member} of run {record.RunId})");
        return loaded;
    }

    private static ModelCatalog LoadScriptModels(RunRecord record, string member, TrainedMember trained, string script, string model)
    {
        if (FileStat.Of(script).Kind != FileKind.Regular)
            throw new FlowDefinitionException($"{script}: the flow script that defines model '{model}' (member {member} of run {record.RunId}) is no longer a readable file");
        if (FlowScriptHost.ScriptHash(script) != trained.ModelSourceHash)
            throw new FlowDefinitionException($"{script} has changed since run {record.RunId} trained member {member} with its model '{model}': " +
                $"the weights may not fit the model it defines now; rerunning the flow retrains it: {record.Command}");
        return FlowScriptHost.Load(script, record.Parameters).Models;
    }

    /// <summary>A node's typed output from its cache entry, after every file's size and SHA-256 are checked.</summary>
    private static object ReadEntry(StageCache cache, StageReport report, Type type, RunRecord record)
    {
        var lookup = cache.Lookup(report.Stage, report.Fingerprint);
        if (lookup.Status != CacheStatus.Hit)
            throw new FlowDefinitionException(
                $"{report.Stage} of run {record.RunId}: cache entry {lookup.Dir} is {lookup.Status.ToString().ToLowerInvariant()}{(lookup.Problem is null ? "" : $" ({lookup.Problem})")}; " +
                $"rerun the flow to recompute it: {record.Command}");
        try { return OutputStore.Read(type, lookup.Dir); }
        catch (InvalidDataException e) { throw new FlowDefinitionException($"{report.Stage} of run {record.RunId}: {e.Message}"); }
    }
}
