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
    [Description("Average each prediction with the prediction on the mirrored image")] public bool FlipTta { get; init; } = true;
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

public sealed record EnsembleMetrics(IReadOnlyList<string> Members, IReadOnlyDictionary<string, double> Weights, bool FlipTta,
    double ValidAccuracy, double ValidNll, double EqualWeightValidAccuracy, double EqualWeightValidNll, string BestMember,
    double BestMemberValidAccuracy, bool FellBackToBestMember, string Explanation, ClassificationMetrics Valid, ClassificationMetrics? Test,
    string ConfusionMember, bool Submission, IReadOnlyDictionary<string, MemberEvaluation> PerMember);

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
            using var model = member.Load(ctx.Models, c, valid.Side, ctx.Run.Device);
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
                pv = Predictor.PredictProbabilities(model, valid, ctx.Run.Device, s.FlipTta, s.BatchSize, ctx.CancellationToken, Counting(0));
                pt = test.Count > 0 ? Predictor.PredictProbabilities(model, test, ctx.Run.Device, s.FlipTta, s.BatchSize, ctx.CancellationToken, Counting(valid.Count)) : [];
            }
            ctx.Log.Information("Member {Model} predicted {Images} images in {Seconds:0.00} s (flip TTA {FlipTta})",
                member.Member, valid.Count + test.Count, clock.Elapsed.TotalSeconds, s.FlipTta);
            validProbs.Add(pv);
            testProbs.Add(pt);
        }

        var fit = EnsembleWeights.Fit(validProbs, valid.Labels, c);
        var weights = members.Select((m, i) => (m.Member, fit.Weights[i])).ToDictionary(x => x.Member, x => x.Item2);
        // The fallback is said first, so the weights logged next read as the ones used, not the ones fitted.
        if (fit.FellBackToBestMember)
            ctx.Log.Warning("Ensemble fell back to the best member: {Explanation}", fit.Explanation);
        ctx.Log.Information("Ensemble weights used {Weights}: valid accuracy {EnsembleValidAccuracy:0.0000} (NLL {ValidNll:0.0000}); equal weights {EqualWeightAccuracy:0.0000}; best member {BestMember} {BestMemberAccuracy:0.0000}",
            SettingsSchema.Pairs(weights.Select(kv => KeyValuePair.Create(kv.Key, Math.Round(kv.Value, 4)))), fit.ValidAccuracy, fit.ValidNll, fit.EqualWeightAccuracy, members[fit.BestMember].Member, fit.BestMemberAccuracy);

        var ensembleValid = EnsembleWeights.Combine(validProbs, fit.Weights, c);
        var validReport = ClassificationReport.Compute(valid.Labels, EnsembleWeights.ArgMax(ensembleValid, c), classes);
        var memberReports = members.Select((m, i) => (m.Member, Valid: ClassificationReport.Compute(valid.Labels, EnsembleWeights.ArgMax(validProbs[i], c), classes),
            Test: test.Count > 0 && test.HasLabels ? ClassificationReport.Compute(test.Labels, EnsembleWeights.ArgMax(testProbs[i], c), classes) : null)).ToList();
        // A named member exists: the planner checked it against the flow's members (CheckBound).
        var chosen = s.ConfusionMember is { Length: > 0 } named ? named : members[fit.BestMember].Member;

        var confusionValid = ctx.Figure("confusion_ensemble_valid.png");
        ConfusionMatrixFigure.SavePng(confusionValid.Path, validReport, "Ensemble, validation set");
        ConfusionMatrixFigure.SaveCsv(ctx.PublishPath("confusion_ensemble_valid.csv"), validReport);
        var chosenReport = memberReports.First(r => r.Member == chosen).Valid;
        var confusionMember = ctx.Figure($"confusion_{chosen}_valid.png");
        ConfusionMatrixFigure.SavePng(confusionMember.Path, chosenReport, $"{chosen}, validation set");
        ConfusionMatrixFigure.SaveCsv(ctx.PublishPath($"confusion_{chosen}_valid.csv"), chosenReport);

        ClassificationReport? testReport = null;
        FigureFile? confusionTest = null;
        DataFile? submission = null;
        var probabilities = new DataFile(ctx.PublishPath("probabilities.parquet"));
        if (test.Count > 0)
        {
            var ensembleTest = EnsembleWeights.Combine(testProbs, fit.Weights, c);
            var predicted = EnsembleWeights.ArgMax(ensembleTest, c);
            submission = new DataFile(ctx.PublishPath("predictions.csv"));
            SubmissionFile.Write(submission.Path, test.Ids, predicted);
            await PredictionTable.WriteAsync(probabilities.Path, classes,
                [new PredictionSplit("valid", valid.Ids, valid.Labels, ensembleValid), new PredictionSplit("test", test.Ids, test.Labels, ensembleTest)], ctx.CancellationToken);
            if (test.HasLabels)
            {
                testReport = ClassificationReport.Compute(test.Labels, predicted, classes);
                confusionTest = ctx.Figure("confusion_ensemble_test.png");
                ConfusionMatrixFigure.SavePng(confusionTest.Path, testReport, "Ensemble, test set");
                ConfusionMatrixFigure.SaveCsv(ctx.PublishPath("confusion_ensemble_test.csv"), testReport);
            }
            ctx.Log.Information("Wrote the submission file for {TestRows} test images{TestAccuracy}", test.Count,
                testReport is null ? "" : $"; test accuracy {testReport.Accuracy:0.0000}");
        }
        else
        {
            await PredictionTable.WriteAsync(probabilities.Path, classes, [new PredictionSplit("valid", valid.Ids, valid.Labels, ensembleValid)], ctx.CancellationToken);
            ctx.Log.Information("The data has no test set: validation predicted, no submission file written");
        }
        ctx.Rows["valid"] = valid.Count;
        ctx.Rows["test"] = test.Count;

        var metrics = new EnsembleMetrics(members.Select(m => m.Member).ToList(), weights, s.FlipTta, fit.ValidAccuracy, fit.ValidNll,
            fit.EqualWeightAccuracy, fit.EqualWeightNll, members[fit.BestMember].Member, fit.BestMemberAccuracy, fit.FellBackToBestMember,
            fit.Explanation, ClassificationMetrics.From(validReport), testReport is null ? null : ClassificationMetrics.From(testReport), chosen,
            submission is not null,
            memberReports.ToDictionary(r => r.Member, r => new MemberEvaluation(weights[r.Member], r.Valid.Accuracy, r.Test?.Accuracy, ClassificationMetrics.From(r.Valid))));
        return new EnsemblePrediction(confusionValid, confusionMember, confusionTest, submission, probabilities, metrics);
    }
}
