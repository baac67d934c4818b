using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core.Data;
using Fer.Core.Ensemble;
using Fer.Core.Plots;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

public sealed record PredictSettings
{
    [Description("Test-time augmentation: none, flip (the image and its mirror) or ten_crop (for members that see a centre crop: the centre and four corner crops, each mirrored)")]
    public TestTimeAugmentation Tta { get; init; } = TestTimeAugmentation.Flip;
    [Description("Images per forward pass"), Range(1.0, 65_536.0)] public int BatchSize { get; init; } = 256;
    [Description("Member whose confusion matrix is drawn beside the ensemble's (default: the best member)")] public string ConfusionMember { get; init; } = "";
}

public sealed record ClassScores(double Precision, double Recall, double F1, int Support);

/// <summary>A classification report as metrics: accuracy, macro F1, best and worst class, per-class scores.</summary>
public sealed record ClassificationMetrics(double Accuracy, double MacroF1, string BestClass, string WorstClass, IReadOnlyDictionary<string, ClassScores> PerClass)
{
    public static ClassificationMetrics From(ClassificationReport r) => new(r.Accuracy, r.MacroF1, r.BestClass, r.WorstClass,
        r.PerClass.ToDictionary(p => p.Name, p => new ClassScores(p.Precision, p.Recall, p.F1, p.Support)));
}

/// <summary>One member as the ensemble judged it.</summary>
public sealed record MemberEvaluation(double Weight, double ValidAccuracyTta, double? TestAccuracy, ClassificationMetrics Valid);

/// <summary>
/// The ensemble as predict fitted and judged it (metrics.json and run.json; read back by fer runs, compare, predict). Named
/// properties with defaults, so a run.json that lacks one (written by an older Fer, or edited) still reads.
/// </summary>
public sealed record EnsembleMetrics
{
    public IReadOnlyList<string> Members { get; init; } = [];
    public IReadOnlyDictionary<string, double> Weights { get; init; } = new Dictionary<string, double>();
    /// <summary>Whether predictions were averaged with the mirror image (also true for ten-crop); what Fer before <see cref="Tta"/> wrote.</summary>
    public bool FlipTta { get; init; }
    /// <summary>The test-time augmentation used; null in runs written before Fer recorded it (then <see cref="FlipTta"/> says).</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(LowerCaseEnumConverter<TestTimeAugmentation>))]
    public TestTimeAugmentation? Tta { get; init; }
    /// <summary>The test-time augmentation this ensemble predicts with.</summary>
    public TestTimeAugmentation TtaUsed => Tta ?? (FlipTta ? TestTimeAugmentation.Flip : TestTimeAugmentation.None);
    public double ValidAccuracy { get; init; }
    public double ValidNll { get; init; }
    public double EqualWeightValidAccuracy { get; init; }
    public double EqualWeightValidNll { get; init; }
    public string BestMember { get; init; } = "";
    public double BestMemberValidAccuracy { get; init; }
    public bool FellBackToBestMember { get; init; }
    /// <summary>How the members were combined (fitted, equal, best_member), chosen by held-out accuracy over <see cref="Folds"/> folds.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(LowerCaseEnumConverter<EnsembleChoice>))]
    public EnsembleChoice Combination { get; init; } = EnsembleChoice.Fitted;
    public int Folds { get; init; }
    /// <summary>Each candidate's held-out accuracy and NLL, by its snake_case name (empty when the set was too small to fold).</summary>
    public IReadOnlyDictionary<string, HeldOutScore> HeldOut { get; init; } = new Dictionary<string, HeldOutScore>();
    public string Explanation { get; init; } = "";
    public ClassificationMetrics Valid { get; init; } = new(0, 0, "", "", new Dictionary<string, ClassScores>());
    public ClassificationMetrics? Test { get; init; }
    public string ConfusionMember { get; init; } = "";
    public bool Submission { get; init; }
    public IReadOnlyDictionary<string, MemberEvaluation> PerMember { get; init; } = new Dictionary<string, MemberEvaluation>();
}

/// <summary>The fitted ensemble's predictions: confusion figures, the submission and probabilities, and metrics.</summary>
public sealed record EnsemblePrediction(FigureFile ConfusionValid, FigureFile ConfusionMember, FigureFile? ConfusionTest,
    DataFile? Submission, DataFile Probabilities, EnsembleMetrics Metrics) : IHasMetrics
{
    object IHasMetrics.Metrics => Metrics;
}

/// <summary>What the ensemble predicts from: the split and every trained member.</summary>
public sealed record PredictInputs(SplitFaces Split, IReadOnlyList<Produced<TrainedMember>> Members) : IStageInputs;

/// <summary>
/// The ensemble (the join of every member): each member predicts class probabilities for the validation and test
/// sets (optionally averaged with the mirrored image's); the weights are fitted on validation (non-negative, summing
/// to 1, minimising validation NLL) and evaluated beside the equal-weight average. Writes the submission file when
/// there is a test set, confusion matrices, and metrics.
/// </summary>
public sealed class PredictStage : Stage<PredictInputs, PredictSettings, EnsemblePrediction>
{
    public override string Kind => "predict";

    protected override void CheckBound(PredictSettings s, BoundInputs inputs, string owner)
    {
        var members = TrainMemberStage.MembersIn(inputs);
        if (s.ConfusionMember is { Length: > 0 } named && !members.Contains(named))
            throw new FlowDefinitionException($"{owner}: confusion_member: no member '{named}'; members: {string.Join(", ", members)}");
    }

    protected override async Task<EnsemblePrediction> RunAsync(StageContext ctx, PredictInputs inputs, PredictSettings s)
    {
        var split = inputs.Split;
        var members = inputs.Members.Select(p => p.Output).ToList();
        var valid = await split.Valid.ReadAsync(ctx.CancellationToken);
        var test = await split.Test.ReadAsync(ctx.CancellationToken);
        var classes = valid.ClassNames;
        int c = classes.Count;
        if (test.Count > 0 && test.Side != valid.Side)
            throw new FerDataException(split.Test.Path, 0, $"test images are {test.Side}x{test.Side}, validation images {valid.Side}x{valid.Side}");

        var validProbs = new List<float[]>();
        var testProbs = new List<float[]>();
        foreach (var member in members)
        {
            var (pv, pt) = PredictMember(ctx, s, member, valid, test);
            validProbs.Add(pv);
            testProbs.Add(pt);
        }
        var fit = FitWeights(ctx, members, validProbs, valid.Labels, c);
        var weights = members.Select((m, i) => (m.Member, fit.Weights[i])).ToDictionary(x => x.Member, x => x.Item2);

        var ensembleValid = EnsembleWeights.Combine(validProbs, fit.Weights, c);
        var validReport = ClassificationReport.Compute(valid.Labels, EnsembleWeights.ArgMax(ensembleValid, c), classes);
        var memberReports = members.Select((m, i) => (m.Member, Valid: ClassificationReport.Compute(valid.Labels, EnsembleWeights.ArgMax(validProbs[i], c), classes),
            Test: test.Count > 0 && test.HasLabels ? ClassificationReport.Compute(test.Labels, EnsembleWeights.ArgMax(testProbs[i], c), classes) : null)).ToList();
        // A named member exists: the planner checked it against the flow's members (CheckBound).
        var chosen = s.ConfusionMember is { Length: > 0 } named ? named : members[fit.BestMember].Member;
        var confusionValid = Confusion(ctx, "confusion_ensemble_valid", validReport, "Ensemble, validation set");
        var confusionMember = Confusion(ctx, $"confusion_{chosen}_valid", memberReports.First(r => r.Member == chosen).Valid, $"{chosen}, validation set");

        ClassificationReport? testReport = null;
        FigureFile? confusionTest = null;
        DataFile? submission = null;
        var probabilities = new DataFile(ctx.PublishPath("probabilities.parquet"));
        var tables = new List<PredictionSplit> { new("valid", valid.Ids, valid.Labels, ensembleValid) };
        if (test.Count > 0)
        {
            var ensembleTest = EnsembleWeights.Combine(testProbs, fit.Weights, c);
            var predicted = EnsembleWeights.ArgMax(ensembleTest, c);
            submission = new DataFile(ctx.PublishPath("predictions.csv"));
            SubmissionFile.Write(submission.Path, test.Ids, predicted);
            tables.Add(new("test", test.Ids, test.Labels, ensembleTest));
            if (test.HasLabels)
            {
                testReport = ClassificationReport.Compute(test.Labels, predicted, classes);
                confusionTest = Confusion(ctx, "confusion_ensemble_test", testReport, "Ensemble, test set");
            }
            ctx.Log.Information("Wrote the submission file for {TestRows} test images{TestAccuracy}", test.Count,
                testReport is null ? "" : $"; test accuracy {testReport.Accuracy:0.0000}");
        }
        else ctx.Log.Information("The data has no test set: validation predicted, no submission file written");
        await PredictionTable.WriteAsync(probabilities.Path, classes, tables, ctx.CancellationToken);
        ctx.Rows["valid"] = valid.Count;
        ctx.Rows["test"] = test.Count;

        var metrics = new EnsembleMetrics
        {
            Members = [.. members.Select(m => m.Member)], Weights = weights, FlipTta = s.Tta != TestTimeAugmentation.None, Tta = s.Tta,
            ValidAccuracy = fit.ValidAccuracy, ValidNll = fit.ValidNll, EqualWeightValidAccuracy = fit.EqualWeightAccuracy, EqualWeightValidNll = fit.EqualWeightNll,
            BestMember = members[fit.BestMember].Member, BestMemberValidAccuracy = fit.BestMemberAccuracy,
            FellBackToBestMember = fit.FellBackToBestMember, Explanation = fit.Explanation, Combination = fit.Choice, Folds = fit.Folds,
            HeldOut = fit.HeldOut.ToDictionary(h => SettingsSchema.SnakeCase(h.Key.ToString()), h => h.Value),
            Valid = ClassificationMetrics.From(validReport), Test = testReport is null ? null : ClassificationMetrics.From(testReport),
            ConfusionMember = chosen, Submission = submission is not null,
            PerMember = memberReports.ToDictionary(r => r.Member, r => new MemberEvaluation(weights[r.Member], r.Valid.Accuracy, r.Test?.Accuracy, ClassificationMetrics.From(r.Valid))),
        };
        return new EnsemblePrediction(confusionValid, confusionMember, confusionTest, submission, probabilities, metrics);
    }

    /// <summary>One member's class probabilities on the validation and test images (with the test-time augmentation set), with progress.</summary>
    private static (float[] Valid, float[] Test) PredictMember(StageContext ctx, PredictSettings s, TrainedMember member, FaceSet valid, FaceSet test)
    {
        using var model = member.Load(ctx.Models, valid.ClassNames.Count, valid.Side, ctx.Run.Device);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        float[] pv, pt;
        using (var row = ctx.Run.Progress.Start($"predict {member.Member}"))
        {
            int total = valid.Count + test.Count;
            IProgress<int> Counting(int before) => new InlineProgress<int>(done =>
            {
                int images = before + done;
                if (row.Report($"predict {member.Member}: {images:N0}/{total:N0} images, {images / Math.Max(1e-3, clock.Elapsed.TotalSeconds):0} images/s", images, total))
                    ctx.Log.Debug("Progress predicting {Model}: {ImagesDone}/{Images} images", member.Member, images, total);
            });
            pv = Predictor.PredictProbabilities(model, valid, ctx.Run.Device, s.Tta, s.BatchSize, ctx.CancellationToken, Counting(0));
            pt = test.Count > 0 ? Predictor.PredictProbabilities(model, test, ctx.Run.Device, s.Tta, s.BatchSize, ctx.CancellationToken, Counting(valid.Count)) : [];
        }
        ctx.Log.Information("Member {Model} predicted {Images} images in {Seconds:0.00} s (test-time augmentation {Tta}, {Views} views)",
            member.Member, valid.Count + test.Count, clock.Elapsed.TotalSeconds, s.Tta, Predictor.Views(model, s.Tta));
        return (pv, pt);
    }

    /// <summary>The ensemble weights fitted on validation, logged (a fall-back to the best member first, so the weights logged read as those used).</summary>
    private static EnsembleFit FitWeights(StageContext ctx, List<TrainedMember> members, List<float[]> validProbs, int[] labels, int classes)
    {
        var fit = EnsembleWeights.Fit(validProbs, labels, classes);
        // The choice is said first, so the weights logged next read as the ones used, not the ones fitted.
        ctx.Log.Information("Ensemble combination {Combination}: {Explanation}", SettingsSchema.SnakeCase(fit.Choice.ToString()), fit.Explanation);
        ctx.Log.Information("Ensemble weights used {Weights}: valid accuracy {EnsembleValidAccuracy:0.0000} (NLL {ValidNll:0.0000}); equal weights {EqualWeightAccuracy:0.0000}; best member {BestMember} {BestMemberAccuracy:0.0000}",
            SettingsSchema.Pairs(members.Select((m, i) => KeyValuePair.Create(m.Member, Math.Round(fit.Weights[i], 4)))), fit.ValidAccuracy, fit.ValidNll,
            fit.EqualWeightAccuracy, members[fit.BestMember].Member, fit.BestMemberAccuracy);
        return fit;
    }

    /// <summary>A confusion matrix as a figure (NAME.png) and a published table (NAME.csv).</summary>
    private static FigureFile Confusion(StageContext ctx, string name, ClassificationReport report, string title)
    {
        var figure = ctx.Figure($"{name}.png");
        ConfusionMatrixFigure.SavePng(figure.Path, report, title);
        ConfusionMatrixFigure.SaveCsv(ctx.PublishPath($"{name}.csv"), report);
        return figure;
    }
}
