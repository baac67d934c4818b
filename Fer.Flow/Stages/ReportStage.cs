using System.Globalization;
using System.Net;
using System.Text;
using Fer.Core.Ensemble;
using Fer.Core.Models;
using Fer.Core.Plots;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

public sealed record ReportSettings
{
    [System.ComponentModel.Description("Report title (default: the flow's name)")] public string Title { get; init; } = "";
}

/// <summary>The report and the figure that compares every member's validation curve.</summary>
public sealed record ReportOutput(DataFile Html, FigureFile? ValidationComparison);

/// <summary>What the report is written from: whatever of these the flow makes (each is optional).</summary>
public sealed record ReportSources(RawFaces? Data, SplitFaces? Split, [MayBeEmpty] IReadOnlyList<Produced<TrainedMember>> Members,
    EnsemblePrediction? Ensemble, Explanations? Explanations) : IStageInputs;

/// <summary>
/// report.html: one self-contained page (figures embedded) in the seed report's order, written from the run's
/// typed outputs: CNN, DNN, confusion matrix, saliency, filters and layer outputs, the ensemble, the validation
/// leak when measurable, and the run's facts. It is rendered on every run (it describes the run), so
/// `--only report` rebuilds it from the cache in seconds.
/// </summary>
public sealed class ReportStage : Stage<ReportSources, ReportSettings, ReportOutput>
{
    public override string Kind => "report";
    public override bool Volatile => true;

    protected override async Task<ReportOutput> RunAsync(StageContext ctx, ReportSources sources, ReportSettings s)
    {
        var members = sources.Members.Select(p => p.Output).ToList();
        FigureFile? comparison = null;
        if (members.Count > 0)
        {
            var histories = new Dictionary<string, IReadOnlyList<Fer.Core.Training.EpochRecord>>();
            foreach (var m in members) histories[m.Member] = await m.History.ReadAsync(ctx.CancellationToken);
            comparison = ctx.Figure("train_validation_comparison.png");
            TrainingCurves.SaveValidationComparison(comparison.Path, histories, "Validation accuracy per epoch");
        }
        var inputs = new ReportInputs(sources.Data, sources.Split, members, sources.Ensemble, sources.Explanations, comparison);
        var html = ReportBuilder.Build(ctx.Run, s.Title, inputs);
        var page = new DataFile(ctx.PublishPath("report.html"));
        await File.WriteAllTextAsync(page.Path, html, new UTF8Encoding(false), ctx.CancellationToken);
        ctx.Rows["figures"] = html.Split("<figure>").Length - 1;
        ctx.Log.Information("Wrote the report {ReportPath} ({Kilobytes:0} kB)", Path.Combine(ctx.Run.RunDir, "report.html"), html.Length / 1024.0);
        return new ReportOutput(page, comparison);
    }
}

/// <summary>What the report is written from.</summary>
public sealed record ReportInputs(RawFaces? Data, SplitFaces? Split, IReadOnlyList<TrainedMember> Members, EnsemblePrediction? Ensemble,
    Explanations? Explanations, FigureFile? ValidationComparison);

/// <summary>Builds the report's HTML from a run's typed outputs. Every sentence is computed from the numbers.</summary>
public static class ReportBuilder
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Build(RunContext run, string title, ReportInputs r)
    {
        var record = RunRecord.TryRead(run.RunDir);
        var cnns = r.Members.Where(m => m.Family == ModelFamily.Convolutional).ToList();
        var dnns = r.Members.Where(m => m.Family == ModelFamily.FullyConnected).ToList();
        var ensemble = r.Ensemble?.Metrics;
        var h = new StringBuilder();
        title = title.Length > 0 ? title : $"Facial expression recognition: {run.Flow.Name}";
        h.Append($"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(title)}</title><style>{Css}</style></head><body>");
        h.Append($"<h1>{E(title)}</h1><p class=\"sub\">Run {E(run.RunId)} of flow <code>{E(run.Flow.Name)}</code>, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, device {E(run.Device.ToString())}.</p>");
        h.Append($"<p class=\"lead\">{E(Headline(ensemble))}</p>");

        ModelSections(h, cnns, dnns, r.ValidationComparison);
        ConfusionSection(h, ensemble, r.Ensemble);
        ExplanationSections(h, r.Explanations?.Members ?? []);
        EnsembleSection(h, ensemble);
        // 7. Leak
        h.Append("<section id=\"leak\"><h2>7. Validation leak</h2>");
        h.Append(E(LeakText(run, r)));
        h.Append("</section>");

        FactsSection(h, run, record, r);
        h.Append("</body></html>");
        return h.ToString();
    }

    /// <summary>Sections 1 and 2: each CNN and DNN with its table, curves and summary, and the two families compared.</summary>
    private static void ModelSections(StringBuilder h, List<TrainedMember> cnns, List<TrainedMember> dnns, FigureFile? validationComparison)
    {
        h.Append("<section id=\"cnn\"><h2>1. Convolutional neural network</h2>");
        if (cnns.Count == 0) h.Append("<p>This flow trained no convolutional model.</p>");
        foreach (var m in cnns) AppendModel(h, m);
        h.Append("</section>");

        // 2. DNN
        h.Append("<section id=\"dnn\"><h2>2. Deep (fully connected) neural network</h2>");
        if (dnns.Count == 0) h.Append("<p>This flow trained no fully connected model.</p>");
        foreach (var m in dnns) AppendModel(h, m);
        if (cnns.Count > 0 && dnns.Count > 0)
        {
            var bestCnn = cnns.MaxBy(m => m.Metrics.BestValidAccuracy)!;
            var bestDnn = dnns.MaxBy(m => m.Metrics.BestValidAccuracy)!;
            double c = bestCnn.Metrics.BestValidAccuracy, d = bestDnn.Metrics.BestValidAccuracy;
            h.Append($"<p>With {bestDnn.Metrics.Parameters:N0} parameters against the CNN's {bestCnn.Metrics.Parameters:N0}, the DNN {E(bestDnn.Member)} reaches a best validation accuracy of {P(d)}, " +
                     $"{(d < c ? $"{P(c - d)} below" : d > c ? $"{P(d - c)} above" : "equal to")} the CNN {E(bestCnn.Member)} ({P(c)}).</p>");
        }
        AppendFigure(h, validationComparison, "Validation accuracy per epoch of every model");
        h.Append("</section>");

    }

    /// <summary>Section 3: the ensemble's confusion matrices (validation, the chosen member, the labelled test set) and per-class scores.</summary>
    private static void ConfusionSection(StringBuilder h, EnsembleMetrics? ensemble, EnsemblePrediction? prediction)
    {
        h.Append("<section id=\"confusion\"><h2>3. Confusion matrix</h2>");
        if (ensemble is not null)
        {
            var valid = ensemble.Valid;
            h.Append($"<p>On the validation set the ensemble recognises <b>{E(valid.BestClass)}</b> best (recall {F(valid.PerClass[valid.BestClass].Recall)}) and " +
                     $"<b>{E(valid.WorstClass)}</b> worst (recall {F(valid.PerClass[valid.WorstClass].Recall)}); overall accuracy {P(valid.Accuracy)}, macro F1 {F(valid.MacroF1)}.</p>");
            AppendFigure(h, prediction!.ConfusionValid, "Ensemble, validation set, rows normalised");
            AppendFigure(h, prediction.ConfusionMember, $"{ensemble.ConfusionMember}, validation set, rows normalised");
            if (ensemble.Test is { } test)
            {
                h.Append($"<p>On the labelled test set: accuracy {P(test.Accuracy)}, best {E(test.BestClass)}, worst {E(test.WorstClass)}.</p>");
                AppendFigure(h, prediction.ConfusionTest, "Ensemble, test set, rows normalised");
            }
            h.Append(PerClassTable(valid.PerClass));
        }
        else h.Append("<p>This run has no predictions (no predict stage).</p>");
        h.Append("</section>");

    }

    /// <summary>Sections 4 and 5: saliency with masking, SmoothGrad and the faithfulness ranking; filters and layer outputs.</summary>
    private static void ExplanationSections(StringBuilder h, IReadOnlyList<MemberExplanations> explained)
    {
        h.Append("<section id=\"saliency\"><h2>4. Saliency maps</h2>");
        if (explained.Count == 0) h.Append("<p>This run drew no explanations (no visualize stage).</p>");
        foreach (var v in explained)
        {
            var m = v.Metrics.Masking;
            h.Append($"<p>{E(v.Member)}: keeping only the {P(m.KeepFraction)} most salient pixels keeps the prediction for {P(m.KeptPredictionTop)} of the images shown; " +
                     $"keeping as many random pixels keeps it for {P(m.KeptPredictionRandom)}. " +
                     (m.KeptPredictionTop > m.KeptPredictionRandom ? "The saliency map points at pixels the model relies on." : "Here saliency is no better than chance at finding the pixels the model relies on.") + "</p>");
            AppendFigure(h, v.Saliency, $"{v.Member}: original, saliency (vanilla gradient), masked image, Grad-CAM");
            AppendFigure(h, v.SmoothGrad, $"{v.Member}: SmoothGrad");
            AppendFaithfulness(h, v);
        }
        h.Append("</section><section id=\"filters\"><h2>5. Filters and layer outputs</h2>");
        foreach (var v in explained)
        {
            if (v.Metrics.Filters is { } f)
                h.Append($"<p>{E(v.Member)}: gradient ascent raised the mean activation of the {f.Count} filters of <code>{E(f.Layer)}</code> from {F(f.MeanStartActivation)} to {F(f.MeanFinalActivation)} ({F1(f.Seconds)} s).</p>");
            AppendFigure(h, v.Filters, $"{v.Member}: filters by gradient ascent");
            AppendFigure(h, v.Outputs, $"{v.Member}: layer outputs for one image");
        }
        h.Append("</section>");

    }

    /// <summary>Section 6: the members' weights and accuracies beside the fitted and equal-weight ensembles.</summary>
    private static void EnsembleSection(StringBuilder h, EnsembleMetrics? ensemble)
    {
        h.Append("<section id=\"ensemble\"><h2>6. Ensemble</h2>");
        if (ensemble is not null)
        {
            h.Append("<table><tr><th>model</th><th>weight</th><th>validation accuracy</th><th>test accuracy</th></tr>");
            foreach (var (name, e) in ensemble.PerMember)
                h.Append($"<tr><td>{E(name)}</td><td>{F(e.Weight)}</td><td>{P(e.ValidAccuracyTta)}</td><td>{Opt(e.TestAccuracy)}</td></tr>");
            var used = ensemble.Combination switch { EnsembleChoice.Equal => "equal weights", EnsembleChoice.BestMember => "best member", _ => "fitted weights" };
            h.Append($"<tr class=\"total\"><td>ensemble ({used})</td><td>1</td><td>{P(ensemble.ValidAccuracy)}</td><td>{Opt(ensemble.Test?.Accuracy)}</td></tr>");
            h.Append($"<tr><td>equal weights</td><td>-</td><td>{P(ensemble.EqualWeightValidAccuracy)}</td><td>-</td></tr></table>");
            var combination = ensemble.Members.Count == 1
                ? "With one member, its predictions are the ensemble's. "
                : $"Fitted weights are non-negative, sum to 1 and minimise the validation log-loss; the combination used was chosen on held-out folds of the validation set: {E(ensemble.Explanation)}. ";
            h.Append($"<p>{combination}Predictions {ensemble.TtaUsed switch
            {
                TestTimeAugmentation.None => "use the images as they are",
                TestTimeAugmentation.Flip => "average each image with its mirror image",
                _ => "average ten crops of each image (centre and corners, each mirrored) for members that see a crop, the image and its mirror for the others",
            }}.</p>");
            if (ensemble.Submission) h.Append("<p>The submission file is <code>predictions.csv</code> in the run folder.</p>");
        }
        else h.Append("<p>No ensemble in this run.</p>");
        h.Append("</section>");

    }

    /// <summary>The run's facts: script, parameters, command, versions, data, split, seed, device and every stage's outcome.</summary>
    private static void FactsSection(StringBuilder h, RunContext run, RunRecord? record, ReportInputs r)
    {
        h.Append("<section id=\"facts\"><h2>Run facts</h2><table>");
        Fact(h, "flow script", run.Flow.ScriptPath ?? run.Flow.Name);
        Fact(h, "parameters", string.Join(", ", run.Flow.Parameters.Select(kv => $"{kv.Key}={SettingsSchema.Canonical(kv.Value)}")));
        if (record is not null)
        {
            Fact(h, "command", record.Command);
            if (record.Sets.Count > 0) Fact(h, "--set", string.Join(", ", record.Sets.Select(kv => $"{kv.Key}={kv.Value}")));
            Fact(h, "versions", string.Join(", ", record.Versions.Select(kv => $"{kv.Key} {kv.Value}")));
            Fact(h, "started", record.StartedUtc.ToString("u", Inv));
        }
        if (r.Data?.Metrics is { } data)
        {
            Fact(h, "data", data.Source + (data.Files.Count > 0 ? "; sha256 " + string.Join(", ", data.Files.Select(f => f.Sha256)) : ""));
            Fact(h, "rows", string.Join(", ", data.Rows.Select(kv => $"{kv.Key}={kv.Value}")));
        }
        if (r.Split?.Metrics is { } split)
            Fact(h, "split", $"mode {split.Mode}, leaky {split.Leaky}, valid fraction {split.ValidFraction.ToString(Inv)}: train {split.Train}, valid {split.Valid}, test {split.Test}");
        Fact(h, "seed", run.Flow.Parameters.TryGetValue("seed", out var seed) ? SettingsSchema.Canonical(seed) : "not a flow parameter");
        Fact(h, "device", run.Device.ToString());
        h.Append("</table><table><tr><th>stage</th><th>cache</th><th>seconds</th><th>rows</th></tr>");
        List<StageReport> completed;
        lock (run.Completed) completed = [.. run.Completed];
        foreach (var st in completed)
            h.Append($"<tr><td>{E(st.Stage)}</td><td>{E(st.Status.Text())}</td><td>{st.Seconds.ToString("0.00", Inv)}</td><td>{E(string.Join(", ", st.Rows.Select(kv => $"{kv.Key}={kv.Value}")))}</td></tr>");
        var total = record is null ? 0 : (DateTime.UtcNow - record.StartedUtc).TotalSeconds;
        h.Append($"<tr class=\"total\"><td>total so far</td><td></td><td>{total.ToString("0.0", Inv)}</td><td></td></tr></table></section>");
    }

    /// <summary>The methods ranked by faithfulness, with a sentence from the numbers, then their figures.</summary>
    private static void AppendFaithfulness(StringBuilder h, MemberExplanations v)
    {
        var methods = v.Metrics.Methods;
        if (methods.Count > 0 && v.Metrics.RandomMap is { } random)
        {
            var ranked = methods.OrderByDescending(p => p.Value.FaithfulnessScore).ThenBy(p => p.Key, StringComparer.Ordinal).ToList();
            bool evidence = ranked.Any(p => p.Value.EvidenceRatio is not null), sanity = ranked.Any(p => p.Value.SanityRankCorrelation is not null);
            h.Append($"<h3>{E(v.Member)}: which map to believe</h3>");
            h.Append($"<p>{E(FaithfulnessSentence(v.Member, ranked, random, v.Metrics.SanityLayers))}</p>");
            h.Append("<table><tr><th>rank</th><th>method</th><th>deletion AUC (lower better)</th><th>insertion AUC (higher better)</th><th>ROAD MoRF (lower better)</th>" +
                     "<th>ROAD LeRF (higher better)</th><th>score</th>" + (sanity ? "<th>rank correlation, random model</th>" : "") +
                     (evidence ? "<th>evidence ratio</th>" : "") + "<th>seconds</th></tr>");
            int rank = 1;
            foreach (var (name, m) in ranked)
                h.Append($"<tr><td>{rank++}</td><td>{E(m.Title)}</td><td>{F(m.DeletionAuc)}</td><td>{F(m.InsertionAuc)}</td><td>{F(m.RoadMorf)}</td><td>{F(m.RoadLerf)}</td>" +
                         $"<td><b>{F(m.FaithfulnessScore)}</b></td>" +
                         (sanity ? $"<td>{(m.SanityRankCorrelation is { } r ? F(r) + (m.DependsOnModel == false ? " (does not depend on the model)" : "") : "-")}</td>" : "") +
                         (evidence ? $"<td>{(m.EvidenceRatio is { } e ? F(e) : "-")}</td>" : "") + $"<td>{F1(m.Seconds)}</td></tr>");
            h.Append($"<tr class=\"total\"><td>-</td><td>random map</td><td>{F(random.DeletionAuc)}</td><td>{F(random.InsertionAuc)}</td><td>{F(random.RoadMorf)}</td><td>{F(random.RoadLerf)}</td>" +
                     $"<td>{F(random.FaithfulnessScore)}</td>" + (sanity ? "<td>-</td>" : "") + (evidence ? "<td>-</td>" : "") + "<td>-</td></tr></table>");
            h.Append("<p>Score = (insertion - deletion) + (ROAD LeRF - ROAD MoRF), each the mean probability of the explained class. Deletion fills the most relevant pixels with the image mean; " +
                     "insertion puts them back into a blurred copy; ROAD removes them and fills them with a noisy linear imputer, which keeps the image near the data.</p>");
        }
        AppendFigure(h, v.Curves, $"{v.Member}: deletion, insertion and ROAD curves of every method, random maps dashed");
        foreach (var (name, figure) in v.MethodFigures) AppendFigure(h, figure, $"{v.Member}: {name.Replace('_', ' ')}");
        AppendFigure(h, v.Sanity, $"{v.Member}: sanity check, maps after re-initialising the layers from the top down");
    }

    /// <summary>One sentence from the ranking: the best and worst method, how many beat random maps, and which
    /// methods' maps survive the randomisation of the whole model.</summary>
    internal static string FaithfulnessSentence(string member, IReadOnlyList<KeyValuePair<string, MethodMetrics>> ranked, RandomMapMetrics random,
        IReadOnlyList<string> sanityLayers)
    {
        var best = ranked[0].Value;
        var worst = ranked[^1].Value;
        int beat = ranked.Count(p => p.Value.FaithfulnessScore > random.FaithfulnessScore);
        var text = $"On {member}'s explained images {best.Title} is the most faithful map (score {F(best.FaithfulnessScore)}: deletion AUC {F(best.DeletionAuc)}, insertion AUC {F(best.InsertionAuc)}) " +
                   (ranked.Count > 1 ? $"and {worst.Title} the least ({F(worst.FaithfulnessScore)}); " : "; ") +
                   $"{beat} of {ranked.Count} methods beat random maps ({F(random.FaithfulnessScore)})";
        var independent = ranked.Where(p => p.Value.DependsOnModel == false).Select(p => $"{p.Value.Title} ({F(p.Value.SanityRankCorrelation!.Value)})").ToList();
        if (sanityLayers.Count > 0)
            text += independent.Count > 0
                ? $", and with every weight layer re-initialised the maps of {string.Join(", ", independent)} stay rank-correlated with the trained model's: they do not depend on the model."
                : $", and every method's maps change once the weight layers are re-initialised (rank correlation below {F(Fer.Core.Explain.SanityResult.IndependenceThreshold)}).";
        else text += ".";
        return text;
    }

    private static void AppendModel(StringBuilder h, TrainedMember member)
    {
        var m = member.Metrics;
        h.Append($"<h3>{E(member.Member)} (<code>{E(member.Model)}</code>)</h3>");
        if (File.Exists(member.Summary.Path)) h.Append($"<pre class=\"summary\">{E(File.ReadAllText(member.Summary.Path))}</pre>");
        h.Append($"<p>{E(member.Member)} trained {m.EpochsRun} epochs in {F1(m.TrainingSeconds)} s ({F0(m.ImagesPerSecond)} images/s); " +
                 $"its best validation accuracy, {P(m.BestValidAccuracy)} (loss {F(m.BestValidLoss)}), came at epoch {m.BestEpoch}" +
                 (m.BestEpoch < m.EpochsRun ? ", and those weights were kept." : ".") + "</p>");
        AppendFigure(h, member.Curves, $"{member.Member}: accuracy and loss per epoch, training and validation");
    }

    private static void AppendFigure(StringBuilder h, FigureFile? figure, string caption)
    {
        if (figure is null || !File.Exists(figure.Path)) return;
        h.Append($"<figure><img alt=\"{E(caption)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(figure.Path))}\"><figcaption>{E(caption)}</figcaption></figure>");
    }

    private static string PerClassTable(IReadOnlyDictionary<string, ClassScores> perClass)
    {
        var t = new StringBuilder("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
        foreach (var (name, v) in perClass)
            t.Append($"<tr><td>{E(name)}</td><td>{F(v.Precision)}</td><td>{F(v.Recall)}</td><td>{F(v.F1)}</td><td>{v.Support}</td></tr>");
        return t.Append("</table>").ToString();
    }

    private static string Headline(EnsembleMetrics? e)
    {
        if (e is null) return "This run did not reach the prediction stage.";
        var text = $"The fitted ensemble of {e.Weights.Count} models reaches {P(e.ValidAccuracy)} validation accuracy " +
                   $"(best single model {E(e.BestMember)}: {P(e.BestMemberValidAccuracy)}; equal weights: {P(e.EqualWeightValidAccuracy)})";
        if (e.Test is { } t) text += $" and {P(t.Accuracy)} on the labelled test set";
        return text + ".";
    }

    /// <summary>The leak section: this run's split, and a comparable run (same data) with the other setting if one exists.</summary>
    private static string LeakText(RunContext run, ReportInputs r)
    {
        if (r.Split?.Metrics is not { } split) return "This run has no split.";
        bool leaky = split.Leaky;
        var mine = r.Ensemble?.Metrics.ValidAccuracy ?? double.NaN;
        var myTest = r.Ensemble?.Metrics.Test?.Accuracy;
        var dataKey = DataKey(r.Data?.Metrics);
        var text = leaky
            ? $"This run split AFTER flipping, like the seed report: {split.TwinsAcrossSplit:N0} training images have their mirror twin in the validation set, so validation accuracy is inflated. "
            : $"This run split leak-free: no image has its mirror twin across the split ({split.TwinsAcrossSplit} training rows share a source image with validation). ";
        var runs = Path.Combine(run.ArtifactsDir, "runs");
        if (!Directory.Exists(runs)) return text;
        foreach (var other in Directory.EnumerateDirectories(runs).OrderDescending(StringComparer.Ordinal))
        {
            if (other == run.RunDir || RunRecord.TryRead(other) is not { } record) continue;
            var theirSplit = record.MetricsOf<SplitMetrics>().Select(x => x.Metrics).FirstOrDefault();
            var theirEnsemble = record.MetricsOf<EnsembleMetrics>().Select(x => x.Metrics).FirstOrDefault();
            if (theirSplit is null || theirSplit.Leaky == leaky || theirEnsemble is null) continue;
            if (DataKey(record.MetricsOf<DataMetrics>().Select(x => x.Metrics).FirstOrDefault()) != dataKey) continue;
            var theirs = theirEnsemble.ValidAccuracy;
            var (leakyAcc, cleanAcc) = leaky ? (mine, theirs) : (theirs, mine);
            text += $"Run {Path.GetFileName(other)} on the same data split {(theirSplit.Leaky ? "after flipping (leaky)" : "leak-free")}: validation accuracy {P(leakyAcc)} leaky against {P(cleanAcc)} leak-free, an inflation of {P(leakyAcc - cleanAcc)}.";
            var theirTest = theirEnsemble.Test?.Accuracy;
            if (myTest is not null && theirTest is not null)
                text += $" On the test set, which neither run saw: {P(leaky ? myTest.Value : theirTest.Value)} leaky against {P(leaky ? theirTest.Value : myTest.Value)} leak-free.";
            return text;
        }
        return text + "Run the same flow with --set split.leaky=" + (leaky ? "false" : "true") + " to measure the inflation beside this run.";
    }

    /// <summary>Two runs used the same data when the source and every file hash agree (synthetic data: same rows and classes).</summary>
    private static string DataKey(DataMetrics? d) => d is null ? "" :
        $"{d.Source}|{string.Join(",", d.Files.Select(f => f.Sha256))}|{string.Join(",", d.Rows.Select(kv => $"{kv.Key}={kv.Value}"))}|{string.Join(",", d.ClassCounts)}";

    private static void Fact(StringBuilder h, string k, string v) => h.Append($"<tr><th>{E(k)}</th><td>{E(v)}</td></tr>");
    private static string E(string s) => WebUtility.HtmlEncode(s);
    private static string F(double v) => v.ToString("0.000", Inv);
    private static string F1(double v) => v.ToString("0.0", Inv);
    private static string F0(double v) => v.ToString("0", Inv);
    private static string P(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0%", Inv);
    private static string Opt(double? v) => v is null ? "-" : P(v.Value);

    private const string Css = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
        h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}.lead{font-size:1.15em;background:#f3f6fa;padding:.8em 1em;border-left:4px solid #3b6ea5}
        h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
        pre.summary{font-size:12px;background:#fafafa;border:1px solid #eee;padding:.6em;overflow-x:auto}
        figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
        table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-size:.92em}
        th{background:#f5f5f5}tr.total td{font-weight:bold}code{background:#f3f3f3;padding:0 .2em}
        """;
}
