using Fer.Core.Data;
using Fer.Core.Ensemble;
using Fer.Core.Plots;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

/// <summary>
/// Every trained member predicts class probabilities for the validation and test sets (optionally averaged
/// with the mirrored image's); the ensemble's weights are fitted on validation (non-negative, summing to 1,
/// minimising validation NLL) and evaluated beside the equal-weight average. Writes the submission file when
/// there is a test set, confusion matrices, and metrics.
/// </summary>
public sealed class PredictStage : IStage
{
    public const string EnsembleFile = "ensemble.json";

    public string Name => "predict";
    public int CodeVersion => 1;
    public IReadOnlyList<string> Upstream => ["split", "train"];
    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.Bool("flip_tta", true, "Average each prediction with the prediction on the mirrored image"),
        StageParameter.Int("batch_size", 256, "Images per forward pass"),
        StageParameter.String("confusion_member", "", "Member whose confusion matrix is drawn beside the ensemble's (default: the best member)"),
    ];

    public async Task RunAsync(StageContext ctx)
    {
        var split = ctx.Input("split");
        var trainOutput = ctx.Input("train");
        var valid = await ParquetTensorStore.ReadFacesAsync(split.PathOf(SplitStage.ValidFile), ctx.CancellationToken);
        var test = await ParquetTensorStore.ReadFacesAsync(split.PathOf(SplitStage.TestFile), ctx.CancellationToken);
        var members = TrainStage.ReadMembers(trainOutput);
        var classes = valid.ClassNames;
        int c = classes.Count;
        bool tta = ctx.Settings.Bool("flip_tta");
        int batch = (int)ctx.Settings.Int("batch_size");

        var validProbs = new List<float[]>();
        var testProbs = new List<float[]>();
        foreach (var member in members)
        {
            using var model = TrainStage.LoadModel(trainOutput, member, c, valid.Side, ctx.Run.Device);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var pv = Predictor.PredictProbabilities(model, valid, ctx.Run.Device, tta, batch, ctx.CancellationToken);
            var pt = test.Count > 0 ? Predictor.PredictProbabilities(model, test, ctx.Run.Device, tta, batch, ctx.CancellationToken) : [];
            ctx.Log.Information("Member {Model} predicted {Images} images in {Seconds:0.00} s (flip TTA {FlipTta})",
                member.Name, valid.Count + test.Count, clock.Elapsed.TotalSeconds, tta);
            await ParquetTensorStore.WriteTensorAsync(ctx.OutputPath($"members/{member.Name}/valid.parquet"), pv, [valid.Count, c], ct: ctx.CancellationToken);
            if (test.Count > 0)
                await ParquetTensorStore.WriteTensorAsync(ctx.OutputPath($"members/{member.Name}/test.parquet"), pt, [test.Count, c], ct: ctx.CancellationToken);
            validProbs.Add(pv);
            testProbs.Add(pt);
        }

        var fit = EnsembleWeights.Fit(validProbs, valid.Labels, c);
        var weights = members.Select((m, i) => (m.Name, fit.Weights[i])).ToDictionary(x => x.Name, x => x.Item2);
        // The fallback is said first, so the weights logged next read as the ones used, not the ones fitted.
        if (fit.FellBackToBestMember)
            ctx.Log.Warning("Ensemble fell back to the best member: {Explanation}", fit.Explanation);
        ctx.Log.Information("Ensemble weights used {Weights}: valid accuracy {EnsembleValidAccuracy:0.0000} (NLL {ValidNll:0.0000}); equal weights {EqualWeightAccuracy:0.0000}; best member {BestMember} {BestMemberAccuracy:0.0000}",
            StageParameter.Pairs(weights.Select(kv => KeyValuePair.Create(kv.Key, Math.Round(kv.Value, 4)))), fit.ValidAccuracy, fit.ValidNll, fit.EqualWeightAccuracy, members[fit.BestMember].Name, fit.BestMemberAccuracy);

        var ensembleValid = EnsembleWeights.Combine(validProbs, fit.Weights, c);
        var validReport = ClassificationReport.Compute(valid.Labels, EnsembleWeights.ArgMax(ensembleValid, c), classes);
        var memberReports = members.Select((m, i) => (m.Name, Valid: ClassificationReport.Compute(valid.Labels, EnsembleWeights.ArgMax(validProbs[i], c), classes),
            Test: test.Count > 0 && test.HasLabels ? ClassificationReport.Compute(test.Labels, EnsembleWeights.ArgMax(testProbs[i], c), classes) : null)).ToList();
        var chosen = ctx.Settings.String("confusion_member") is { Length: > 0 } named
            ? memberReports.FirstOrDefault(r => r.Name == named).Name
              ?? throw new FlowDefinitionException($"predict.confusion_member: no member '{named}'; members: {string.Join(", ", members.Select(m => m.Name))}")
            : members[fit.BestMember].Name;

        ConfusionMatrixFigure.SavePng(ctx.OutputPath("publish/figures/confusion_ensemble_valid.png"), validReport, "Ensemble, validation set");
        ConfusionMatrixFigure.SaveCsv(ctx.OutputPath("publish/confusion_ensemble_valid.csv"), validReport);
        var chosenReport = memberReports.First(r => r.Name == chosen).Valid;
        ConfusionMatrixFigure.SavePng(ctx.OutputPath($"publish/figures/confusion_{chosen}_valid.png"), chosenReport, $"{chosen}, validation set");
        ConfusionMatrixFigure.SaveCsv(ctx.OutputPath($"publish/confusion_{chosen}_valid.csv"), chosenReport);

        ClassificationReport? testReport = null;
        if (test.Count > 0)
        {
            var ensembleTest = EnsembleWeights.Combine(testProbs, fit.Weights, c);
            var predicted = EnsembleWeights.ArgMax(ensembleTest, c);
            SubmissionFile.Write(ctx.OutputPath("publish/predictions.csv"), test.Ids, predicted);
            await ParquetTensorStore.WriteTensorAsync(ctx.OutputPath("publish/probabilities.parquet"), ensembleTest, [test.Count, c],
                new Dictionary<string, string> { ["set"] = "test", ["class_names"] = string.Join(",", classes) }, ctx.CancellationToken);
            if (test.HasLabels)
            {
                testReport = ClassificationReport.Compute(test.Labels, predicted, classes);
                ConfusionMatrixFigure.SavePng(ctx.OutputPath("publish/figures/confusion_ensemble_test.png"), testReport, "Ensemble, test set");
                ConfusionMatrixFigure.SaveCsv(ctx.OutputPath("publish/confusion_ensemble_test.csv"), testReport);
            }
            ctx.Log.Information("Wrote the submission file for {TestRows} test images{TestAccuracy}", test.Count,
                testReport is null ? "" : $"; test accuracy {testReport.Accuracy:0.0000}");
        }
        else
        {
            await ParquetTensorStore.WriteTensorAsync(ctx.OutputPath("publish/probabilities.parquet"), ensembleValid, [valid.Count, c],
                new Dictionary<string, string> { ["set"] = "valid", ["class_names"] = string.Join(",", classes) }, ctx.CancellationToken);
            ctx.Log.Information("The data has no test set: validation predicted, no submission file written");
        }
        ctx.Rows["valid"] = valid.Count;
        ctx.Rows["test"] = test.Count;

        RunMetrics.WriteFragment(Path.Combine(ctx.PublishDir, "metrics.json"), new
        {
            ensemble = new
            {
                members = members.Select(m => m.Name),
                weights,
                flip_tta = tta,
                valid_accuracy = fit.ValidAccuracy,
                valid_nll = fit.ValidNll,
                equal_weight_valid_accuracy = fit.EqualWeightAccuracy,
                equal_weight_valid_nll = fit.EqualWeightNll,
                best_member = members[fit.BestMember].Name,
                best_member_valid_accuracy = fit.BestMemberAccuracy,
                fell_back_to_best_member = fit.FellBackToBestMember,
                explanation = fit.Explanation,
                valid = Describe(validReport),
                test = testReport is null ? null : Describe(testReport),
                confusion_member = chosen,
                submission = test.Count > 0 ? "predictions.csv" : null,
            },
            models = memberReports.ToDictionary(r => r.Name, r => new
            {
                valid_accuracy_tta = r.Valid.Accuracy,
                test_accuracy = r.Test?.Accuracy,
                valid = Describe(r.Valid),
            }),
        });
    }

    internal static object Describe(ClassificationReport r) => new
    {
        accuracy = r.Accuracy,
        macro_f1 = r.MacroF1,
        best_class = r.BestClass,
        worst_class = r.WorstClass,
        per_class = r.PerClass.ToDictionary(p => p.Name, p => new { precision = p.Precision, recall = p.Recall, f1 = p.F1, support = p.Support }),
    };
}
