using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core.Models;
using Fer.Core.Plots;
using Fer.Core.Training;
using Fer.Flow.Pipeline;
using TorchSharp;

namespace Fer.Flow.Stages;

/// <summary>One ensemble member's settings: the registered model it trains and how. Model hyperparameters are
/// given beside them by name (conv_dropout, width, ...) and checked against the model registry.</summary>
public sealed record MemberSettings
{
    [Description("Registered model to train: one of Fer's (ModelCatalog.BuiltIn) or one the flow script registers")] public string Model { get; init; } = "";
    [Description("Maximum epochs"), Range(1.0, 100_000.0)] public int Epochs { get; init; } = 10;
    [Description("Batch size"), Range(1.0, 65_536.0)] public int BatchSize { get; init; } = 128;
    [Description("Learning rate (the peak rate of a one_cycle schedule)"), Range(0.0, 10.0, MinimumIsExclusive = true)] public double Lr { get; init; } = 1e-3;
    [Description("Weight decay (L2 for adam and sgd, decoupled for adamw)"), Range(0.0, 1.0)] public double WeightDecay { get; init; }
    [Description("adam (the seed report's), adamw, or sgd")] public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    [Description("SGD momentum"), Range(0.0, 1.0, MaximumIsExclusive = true)] public double Momentum { get; init; } = 0.9;
    [Description("SGD with Nesterov momentum")] public bool Nesterov { get; init; }
    [Description("Learning rate over the run: constant (reduce_lr_factor may lower it on a plateau), cosine, or one_cycle")] public LrSchedule LrSchedule { get; init; } = LrSchedule.Constant;
    [Description("Label smoothing of the training loss (0: off)"), Range(0.0, 1.0, MaximumIsExclusive = true)] public double LabelSmoothing { get; init; }
    [Description("Early stopping patience in epochs on validation loss (0: off); best weights restored"), Range(0.0, 100_000.0)] public int Patience { get; init; }
    [Description("Multiply the learning rate by this on a validation-loss plateau (0: off)"), Range(0.0, 1.0, MaximumIsExclusive = true)] public double ReduceLrFactor { get; init; }
    [Description("Plateau epochs before reducing the learning rate"), Range(1.0, 100_000.0)] public int ReduceLrPatience { get; init; } = 3;
    [Description("Online augmentation: random shift, rotation, zoom (and flip, erasing) of every training batch")] public bool Augment { get; init; }
    [Description("Augmentation: largest shift, as a share of the side"), Range(0.0, 1.0, MaximumIsExclusive = true)] public double AugmentShift { get; init; } = 0.1;
    [Description("Augmentation: largest rotation in degrees"), Range(0.0, 180.0)] public double AugmentRotation { get; init; } = 10;
    [Description("Augmentation: largest zoom change (0.2: scale 0.8-1.2)"), Range(0.0, 1.0, MaximumIsExclusive = true)] public double AugmentZoom { get; init; } = 0.1;
    [Description("Augmentation: mirror half the images")] public bool AugmentFlip { get; init; }
    [Description("Augmentation: random erasing probability (0: off)"), Range(0.0, 1.0)] public double EraseProbability { get; init; }
    [Description("Augmentation: for a model that sees a centre crop (vgg-bn's crop), train on random crops of that size")] public bool AugmentCrop { get; init; } = true;
    [Description("Class-weighted loss (FER2013 is unbalanced)")] public bool ClassWeighted { get; init; }
    [Description("Seed of initialisation, shuffling and dropout")] public long Seed { get; init; }
    /// <summary>The model's hyperparameters in force (its defaults with the given ones applied).</summary>
    [NotASetting] public SortedDictionary<string, double> Hyperparameters { get; init; } = [];
}

public sealed record MemberMetrics(string Model, ModelFamily Family, long Parameters, int EpochsRun, int BestEpoch, double BestValidAccuracy,
    double BestValidLoss, double TrainingSeconds, double ImagesPerSecond, bool StoppedEarly, int ResumedFromEpoch,
    IReadOnlyDictionary<string, double> Hyperparameters);

/// <summary>A trained member: how to rebuild its model, its weights, history, summary and curves.</summary>
public sealed record TrainedMember(string Member, string Model, ModelFamily Family, SortedDictionary<string, double> Hyperparameters,
    WeightsFile Weights, HistoryFile History, DataFile Summary, FigureFile Curves, MemberMetrics Metrics) : IHasMetrics
{
    object IHasMetrics.Metrics => Metrics;

    /// <summary>The hash of the flow script (and its #loaded files) that registered the model; null for Fer's own
    /// models (and for members cached before Fer recorded it). `fer predict` checks it before rebuilding a script's model.</summary>
    public string? ModelSourceHash { get; init; }

    /// <summary>
    /// Rebuilds the trained model (eval mode, on the device) from the flow's model catalog. Weights that do not fit the
    /// model as it is built now (its code changed since the member was trained) are one line naming the member and the
    /// first tensor that differs, not TorchSharp's "mismatched tensor shape".
    /// </summary>
    public FerModel Load(ModelCatalog models, int numClasses, int side, torch.Device device)
    {
        var model = models.Create(Model, numClasses, side, Hyperparameters);
        string? mismatch;
        try { mismatch = SavedWeights.Mismatch(model, Weights.Path); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or OverflowException)
        {
            model.Dispose();
            throw new FlowDefinitionException($"member {Member}: its weights file {Weights.Path} cannot be read ({e.Message}); train it again (fer run FLOW --from train.{Member})");
        }
        if (mismatch is not null)
        {
            model.Dispose();
            throw new FlowDefinitionException($"member {Member}: its trained weights do not fit model {Model} as it is built now ({mismatch}); train it again (fer run FLOW --from train.{Member})");
        }
        model.load(Weights.Path);
        model.to(device);
        model.eval();
        return model;
    }
}

/// <summary>
/// Trains one ensemble member (a node of its own: train.&lt;member&gt;), from the split. Killed mid-training, a rerun
/// resumes from the last finished epoch in the checkpoint folder the engine hands it.
/// </summary>
public sealed class TrainMemberStage : Stage<SplitFaces, MemberSettings, TrainedMember>
{
    public const string KindName = "train-member";
    public override string Kind => KindName;

    public override object BindSettings(IReadOnlyDictionary<string, object> given, string owner, PlanScope scope)
    {
        var modelName = given.TryGetValue("model", out var m) ? m as string ?? "" : "";
        if (!scope.Models.Contains(modelName))
            throw new FlowDefinitionException($"{owner}: unknown model '{modelName}'; registered models: {string.Join(", ", scope.Models.Names)}");
        var entry = scope.Models.Get(modelName);
        var hyper = new Dictionary<string, double>(StringComparer.Ordinal);
        var rest = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (key, value) in given)
        {
            if (!entry.Hyperparameters.ContainsKey(key)) { rest[key] = value; continue; }
            hyper[key] = SettingValue.Number(value)
                ?? throw new FlowDefinitionException($"{owner}: hyperparameter {key} of model {modelName} expects a number, got '{value}'");
        }
        MemberSettings settings;
        try { settings = (MemberSettings)SettingsBinder.Bind(typeof(MemberSettings), null, rest, owner); }
        catch (FlowDefinitionException e) when (e.Message.Contains("unknown setting"))
        {
            throw new FlowDefinitionException($"{e.Message}; hyperparameters of model {modelName}: {(entry.Hyperparameters.Count == 0 ? "none" : string.Join(", ", entry.Hyperparameters.Keys))}");
        }
        try
        {
            Options(settings).Validate(); // combinations the ranges cannot say (Nesterov without SGD), at plan time
            if (!settings.Augment && (settings.AugmentFlip || settings.EraseProbability > 0))
                throw new ArgumentException("augment_flip and erase_probability act on augmented batches: set augment=true");
            return settings with { Hyperparameters = scope.Models.Resolve(modelName, hyper) };
        }
        catch (ArgumentException e) { throw new FlowDefinitionException($"{owner}: {e.Message.Split(" (Parameter")[0]}"); }
    }

    /// <summary>How the member trains, from its settings.</summary>
    internal static TrainOptions Options(MemberSettings s) => new()
    {
        Epochs = s.Epochs,
        BatchSize = s.BatchSize,
        LearningRate = s.Lr,
        WeightDecay = s.WeightDecay,
        Optimizer = s.Optimizer,
        Momentum = s.Momentum,
        Nesterov = s.Nesterov,
        Schedule = s.LrSchedule,
        LabelSmoothing = s.LabelSmoothing,
        EarlyStoppingPatience = s.Patience > 0 ? s.Patience : null,
        ReduceLrFactor = s.ReduceLrFactor > 0 ? s.ReduceLrFactor : null,
        ReduceLrPatience = s.ReduceLrPatience,
        Augmentation = s.Augment
            ? new OnlineAugmentation(s.AugmentShift, s.AugmentRotation, s.AugmentZoom, s.AugmentFlip) { EraseProbability = s.EraseProbability }
            : null,
        ClassWeightedLoss = s.ClassWeighted,
        Seed = s.Seed,
    };

    /// <summary>The member a node trains: its name after the group (train.cnn trains cnn).</summary>
    public static string MemberName(string node) => node.Contains('.') ? node[(node.IndexOf('.') + 1)..] : node;

    /// <summary>The members a node's bound inputs trained, by name (what settings naming a member must be one of).</summary>
    public static IReadOnlyList<string> MembersIn(BoundInputs inputs) => [.. MembersOf(inputs).Select(m => m.Member)];

    /// <summary>The members a node's bound inputs trained, with their settings (the model each trains).</summary>
    public static IReadOnlyList<(string Member, MemberSettings Settings)> MembersOf(BoundInputs inputs) =>
        [.. inputs.Making<TrainedMember>().Select(p => (MemberName(p.Node), (MemberSettings)p.Settings))];

    /// <summary>The trained model's code identity: editing a model's code (Fer's or a script's) retrains its members.</summary>
    public override string? ExtraFingerprint(object settings, PlanScope scope) => scope.Models.Get(((MemberSettings)settings).Model).CodeIdentity;

    protected override async Task<TrainedMember> RunAsync(StageContext ctx, SplitFaces split, MemberSettings s)
    {
        var member = MemberName(ctx.Node);
        var train = await split.Train.ReadAsync(ctx.CancellationToken);
        var valid = await split.Valid.ReadAsync(ctx.CancellationToken);
        var entry = ctx.Models.Get(s.Model);
        using var model = ctx.Models.Create(s.Model, train.ClassNames.Count, train.Side, s.Hyperparameters);
        // Starting weights from the member's seed alone: the same member starts the same in every run and process.
        model.Initialize(s.Seed);
        model.to(ctx.Run.Device);
        var options = Options(s) with { CheckpointDir = ctx.CheckpointDir };
        if (options.Augmentation is { } augmentation && s.AugmentCrop && model.CropMargin > 0)
            options = options with { Augmentation = augmentation with { CropMargin = model.CropMargin } };
        var log = ctx.Log.ForContext("Model", member);
        log.Information("Training member {Model} ({Architecture}, {Parameters:N0} parameters) for up to {Epochs} epochs on {TrainRows} images, validating on {ValidRows}",
            member, s.Model, model.ParameterCount(), options.Epochs, train.Count, valid.Count);
        TrainResult result;
        using (var progress = new TrainProgressReporter(ctx.Run.Progress.Start($"train.{member}"), log))
        {
            var trainer = new Trainer(model, options, ctx.Run.Device, member);
            result = trainer.Fit(train, valid, progress, epoch => log.Information(
                "Epoch {Epoch} of {Model}: loss {Loss:0.0000}, accuracy {Accuracy:0.0000}, valid loss {ValidLoss:0.0000}, valid accuracy {ValidAccuracy:0.0000}, lr {LearningRate:g3}, {EpochSeconds:0.0} s, {ImagesPerSecond:0} images/s",
                epoch.Epoch, member, epoch.Loss, epoch.Accuracy, epoch.ValidLoss, epoch.ValidAccuracy, epoch.LearningRate, epoch.Seconds, epoch.ImagesPerSecond),
                ctx.CancellationToken);
        }
        foreach (var (path, problem) in result.DamagedCheckpoints)
            log.Warning("Checkpoint {Checkpoint} of member {Model} is damaged ({Problem}); it was set aside and training went on from {ResumedFrom}",
                path, member, problem, result.ResumedFromEpoch > 0 ? $"epoch {result.ResumedFromEpoch}" : "scratch");
        if (result.ResumedFromEpoch > 0)
            log.Information("Member {Model} resumed from the checkpoint of epoch {ResumedFromEpoch}", member, result.ResumedFromEpoch);
        log.Information("Member {Model} trained: {EpochsRun} epochs, best epoch {BestEpoch}, best valid accuracy {BestValidAccuracy:0.0000}, {TrainingSeconds:0.0} s{Early}",
            member, result.EpochsRun, result.BestEpoch, result.BestValidAccuracy, result.Seconds, result.StoppedEarly ? " (stopped early)" : "");

        var weights = new WeightsFile(ctx.OutputPath("model.pt"));
        model.save(weights.Path);
        var history = new HistoryFile(ctx.OutputPath("history.parquet"));
        await TrainingHistoryStore.WriteAsync(history.Path, result.History, ctx.CancellationToken);
        var summary = new DataFile(ctx.PublishPath($"models/{member}.summary.txt"));
        await File.WriteAllTextAsync(summary.Path, ModelSummary.Format(model), ctx.CancellationToken);
        var curves = ctx.Figure($"train_{member}.png");
        TrainingCurves.SaveAccuracyAndLoss(curves.Path, $"{member} ({s.Model})", result.History, result.BestEpoch);
        ctx.Rows["epochs"] = result.EpochsRun;
        ctx.Rows["train"] = train.Count;
        var metrics = new MemberMetrics(s.Model, entry.Family, model.ParameterCount(), result.EpochsRun, result.BestEpoch, result.BestValidAccuracy,
            result.BestValidLoss, result.Seconds, result.ImagesPerSecond, result.StoppedEarly, result.ResumedFromEpoch, s.Hyperparameters);
        return new TrainedMember(member, s.Model, entry.Family, s.Hyperparameters, weights, history, summary, curves, metrics)
        { ModelSourceHash = entry.SourceHash };
    }
}
