using System.Globalization;
using System.Text.Json;
using System.Threading.Tasks.Dataflow;
using Fer.Core.Data;
using Fer.Core.Models;
using Fer.Core.Plots;
using Fer.Core.Storage;
using Fer.Core.Training;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;
using Serilog;
using TorchSharp;

namespace Fer.Flow.Stages;

/// <summary>
/// Trains every ensemble member the flow lists. Each member is cached on its own (model, settings and the
/// split it learns from), so changing one member's settings retrains only that member; a member killed
/// mid-training resumes from its last finished epoch. Members run as Dataflow branches, one at a time per
/// device unless `parallel` says otherwise.
/// </summary>
public sealed class TrainStage : IStage
{
    public const string MembersFile = "members.json";
    private const string MemberKind = "train-member";

    public string Name => "train";
    public int CodeVersion => 3; // 2: Keras (glorot) start for the seed models; 3: starting weights from the member seed
    public IReadOnlyList<string> Upstream => ["split"];

    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.Int("parallel", 1, "Members trained at once on the device"),
    ];

    /// <summary>Model hyperparameters: -1 keeps the model's default.</summary>
    private static readonly string[] HyperKeys = ["conv_dropout", "dense_dropout", "dropout", "width"];

    public IReadOnlyList<StageParameter> MemberParameters { get; } =
    [
        StageParameter.Int("epochs", 10, "Maximum epochs"),
        StageParameter.Int("batch_size", 128, "Batch size"),
        StageParameter.Float("lr", 1e-3, "Adam learning rate"),
        StageParameter.Float("weight_decay", 0, "Adam weight decay"),
        StageParameter.Int("patience", 0, "Early stopping patience in epochs on validation loss (0: off); best weights restored"),
        StageParameter.Float("reduce_lr_factor", 0, "Multiply the learning rate by this on a validation-loss plateau (0: off)"),
        StageParameter.Int("reduce_lr_patience", 3, "Plateau epochs before reducing the learning rate"),
        StageParameter.Bool("augment", false, "Online augmentation: random shift, rotation, zoom"),
        StageParameter.Bool("class_weighted", false, "Class-weighted loss (FER2013 is unbalanced)"),
        StageParameter.Int("seed", 0, "Seed of initialisation, shuffling and dropout"),
        .. HyperKeys.Select(k => StageParameter.Float(k, -1, $"Model hyperparameter {k} (-1: model default)")),
    ];

    public sealed record MemberResult(string Name, string Model, string Fingerprint, long Parameters, int EpochsRun, int BestEpoch,
        double BestValidAccuracy, double BestValidLoss, double Seconds, double ImagesPerSecond, bool CacheHit, Dictionary<string, string> Hyperparameters);

    public async Task RunAsync(StageContext ctx)
    {
        if (ctx.Members.Count == 0)
            throw new FlowDefinitionException("stage train lists no members: add model \"name\" \"seed-cnn\" [ ... ]");
        var split = ctx.Input("split");
        var train = await ParquetTensorStore.ReadFacesAsync(split.PathOf(SplitStage.TrainFile), ctx.CancellationToken);
        var valid = await ParquetTensorStore.ReadFacesAsync(split.PathOf(SplitStage.ValidFile), ctx.CancellationToken);

        var results = new MemberResult[ctx.Members.Count];
        var block = new ActionBlock<int>(i => results[i] = TrainMember(ctx, split.Fingerprint, i, train, valid),
            new ExecutionDataflowBlockOptions
            {
                MaxDegreeOfParallelism = (int)Math.Max(1, ctx.Settings.Int("parallel")),
                CancellationToken = ctx.CancellationToken,
            });
        for (int i = 0; i < ctx.Members.Count; i++) block.Post(i);
        block.Complete();
        await block.Completion;

        // Figures: each member's curves and all members' validation accuracy together (the seed's CNN vs DNN).
        var histories = new Dictionary<string, IReadOnlyList<EpochRecord>>();
        foreach (var r in results)
        {
            var history = await TrainingHistoryStore.ReadAsync(ctx.OutputPath($"members/{r.Name}/history.parquet"));
            histories[r.Name] = history;
            TrainingCurves.SaveAccuracyAndLoss(ctx.OutputPath($"publish/figures/train_{r.Name}.png"), $"{r.Name} ({r.Model})", history, r.BestEpoch);
        }
        TrainingCurves.SaveValidationComparison(ctx.OutputPath("publish/figures/train_validation_comparison.png"), histories,
            "Validation accuracy per epoch");

        File.WriteAllText(ctx.OutputPath(MembersFile), JsonSerializer.Serialize(results, JsonOptions));
        ctx.Rows["members"] = results.Length;
        ctx.Rows["members_trained"] = results.Count(r => !r.CacheHit);
        RunMetrics.WriteFragment(Path.Combine(ctx.PublishDir, "metrics.json"), new
        {
            models = results.ToDictionary(r => r.Name, r => new
            {
                model = r.Model, parameters = r.Parameters, epochs_run = r.EpochsRun, best_epoch = r.BestEpoch,
                best_valid_accuracy = r.BestValidAccuracy, best_valid_loss = r.BestValidLoss,
                training_seconds = r.Seconds, images_per_second = r.ImagesPerSecond, hyperparameters = r.Hyperparameters,
            }),
        });
    }

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static IReadOnlyList<MemberResult> ReadMembers(StageOutput train) =>
        JsonSerializer.Deserialize<List<MemberResult>>(File.ReadAllText(train.PathOf(MembersFile)), JsonOptions)!;

    public static string WeightsPath(StageOutput train, string member) => train.PathOf($"members/{member}/model.pt");

    /// <summary>Rebuilds a trained member's model from the train stage's entry.</summary>
    public static FerModel LoadModel(StageOutput train, MemberResult member, int numClasses, int side, torch.Device device)
    {
        var model = ModelRegistry.Create(member.Model, numClasses, side, member.Hyperparameters);
        model.load(WeightsPath(train, member.Name));
        model.to(device);
        model.eval();
        return model;
    }

    private MemberResult TrainMember(StageContext ctx, string splitFingerprint, int index, FaceSet train, FaceSet valid)
    {
        var (spec, settings) = ctx.Members[index];
        var hyper = HyperKeys.Where(k => settings.Float(k) >= 0)
            .ToDictionary(k => k, k => settings.Float(k).ToString("R", CultureInfo.InvariantCulture));
        var fingerprint = Hashing.Sha256Hex(JsonSerializer.Serialize(new
        {
            kind = MemberKind, version = CodeVersion, model = spec.Model, settings = settings.Canonical(), split = splitFingerprint,
        }));
        var log = ctx.Log.ForContext("Model", spec.Name);
        var cache = ctx.Run.Cache;
        var lookup = cache.Lookup(MemberKind, fingerprint);
        bool hit = lookup.Status == CacheStatus.Hit;
        string entry;
        if (hit)
        {
            entry = lookup.Dir;
            log.Information("Member {Model} ({Architecture}) is cached ({Fingerprint}); not retrained", spec.Name, spec.Model, Hashing.Short(fingerprint));
        }
        else
        {
            if (lookup.Status == CacheStatus.Corrupt)
            {
                log.Warning("Cached member {Model} is damaged ({Problem}); retraining", spec.Name, lookup.Problem);
                cache.Evict(MemberKind, fingerprint);
            }
            entry = Train(ctx, spec, settings, hyper, fingerprint, train, valid, log);
        }

        var memberDir = ctx.OutputPath($"members/{spec.Name}/x");
        memberDir = Path.GetDirectoryName(memberDir)!;
        foreach (var file in new[] { "model.pt", "history.parquet", "result.json", "summary.txt" })
            File.Copy(Path.Combine(entry, file), Path.Combine(memberDir, file), overwrite: true);
        File.Copy(Path.Combine(entry, "summary.txt"), ctx.OutputPath($"publish/models/{spec.Name}.summary.txt"), overwrite: true);
        var result = JsonSerializer.Deserialize<MemberResult>(File.ReadAllText(Path.Combine(entry, "result.json")), JsonOptions)!;
        return result with { Name = spec.Name, CacheHit = hit };
    }

    private string Train(StageContext ctx, MemberSpec spec, StageSettings s, Dictionary<string, string> hyper, string fingerprint,
        FaceSet train, FaceSet valid, ILogger log)
    {
        var cache = ctx.Run.Cache;
        var model = ModelRegistry.Create(spec.Model, train.ClassNames.Count, train.Side, hyper);
        // Starting weights from the member's seed alone: the same member starts the same in every run and process.
        model.Initialize(s.Int("seed"));
        model.to(ctx.Run.Device);
        // The checkpoint folder outlives a killed process (it is not the pending entry), so a rerun resumes.
        var checkpoints = Path.Combine(cache.Root, MemberKind, $".checkpoint-{Hashing.Short(fingerprint)}");
        var options = new TrainOptions
        {
            Epochs = (int)s.Int("epochs"),
            BatchSize = (int)s.Int("batch_size"),
            LearningRate = s.Float("lr"),
            WeightDecay = s.Float("weight_decay"),
            EarlyStoppingPatience = s.Int("patience") > 0 ? (int)s.Int("patience") : null,
            ReduceLrFactor = s.Float("reduce_lr_factor") > 0 ? s.Float("reduce_lr_factor") : null,
            ReduceLrPatience = (int)s.Int("reduce_lr_patience"),
            Augmentation = s.Bool("augment") ? new OnlineAugmentation() : null,
            ClassWeightedLoss = s.Bool("class_weighted"),
            Seed = s.Int("seed"),
            CheckpointDir = checkpoints,
        };
        log.Information("Training member {Model} ({Architecture}, {Parameters:N0} parameters) for up to {Epochs} epochs on {TrainRows} images, validating on {ValidRows}",
            spec.Name, spec.Model, model.ParameterCount(), options.Epochs, train.Count, valid.Count);
        using var progress = new TrainProgressReporter(ctx.Run.Interactive, log);
        var trainer = new Trainer(model, options, ctx.Run.Device, spec.Name);
        var result = trainer.Fit(train, valid, progress, epoch => log.Information(
            "Epoch {Epoch} of {Model}: loss {Loss:0.0000}, accuracy {Accuracy:0.0000}, valid loss {ValidLoss:0.0000}, valid accuracy {ValidAccuracy:0.0000}, lr {LearningRate:g3}, {EpochSeconds:0.0} s, {ImagesPerSecond:0} images/s",
            epoch.Epoch, spec.Name, epoch.Loss, epoch.Accuracy, epoch.ValidLoss, epoch.ValidAccuracy, epoch.LearningRate, epoch.Seconds, epoch.ImagesPerSecond),
            ctx.CancellationToken);
        if (result.ResumedFromEpoch > 0)
            log.Information("Member {Model} resumed from the checkpoint of epoch {ResumedFromEpoch}", spec.Name, result.ResumedFromEpoch);
        log.Information("Member {Model} trained: {EpochsRun} epochs, best epoch {BestEpoch}, best valid accuracy {BestValidAccuracy:0.0000}, {TrainingSeconds:0.0} s{Early}",
            spec.Name, result.EpochsRun, result.BestEpoch, result.BestValidAccuracy, result.Seconds, result.StoppedEarly ? " (stopped early)" : "");

        var pending = cache.Begin(MemberKind, fingerprint);
        try
        {
            model.save(Path.Combine(pending.Dir, "model.pt"));
            TrainingHistoryStore.WriteAsync(Path.Combine(pending.Dir, "history.parquet"), result.History).GetAwaiter().GetResult();
            File.WriteAllText(Path.Combine(pending.Dir, "summary.txt"), ModelSummary.Format(model));
            var memberResult = new MemberResult(spec.Name, spec.Model, fingerprint, model.ParameterCount(), result.EpochsRun, result.BestEpoch,
                result.BestValidAccuracy, result.BestValidLoss, result.Seconds, result.ImagesPerSecond, false, hyper);
            File.WriteAllText(Path.Combine(pending.Dir, "result.json"), JsonSerializer.Serialize(memberResult, JsonOptions));
            var dir = cache.Commit(pending, new StageManifest
            {
                Stage = MemberKind, Fingerprint = fingerprint, CodeVersion = CodeVersion, Parameters = s.Canonical(),
                Upstream = new() { ["split"] = ctx.Input("split").Fingerprint }, Seconds = result.Seconds,
                CreatedUtc = DateTime.UtcNow, RunId = ctx.Run.RunId,
            });
            try { Directory.Delete(checkpoints, recursive: true); } catch (IOException) { }
            return dir;
        }
        catch
        {
            cache.Abandon(pending);
            throw;
        }
        finally
        {
            model.Dispose();
        }
    }
}
