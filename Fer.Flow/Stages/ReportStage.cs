using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

/// <summary>
/// report.html: one self-contained page (figures embedded) in the seed report's order, written from the run's
/// numbers: CNN, DNN, confusion matrix, saliency, filters and layer outputs, the ensemble, the validation
/// leak when measurable, and the run's facts. It is rendered on every run (it describes the run) from what
/// the other stages published, so `--only report` rebuilds it from the cache in seconds.
/// </summary>
public sealed class ReportStage : IStage
{
    public string Name => "report";
    public int CodeVersion => 1;
    public IReadOnlyList<string> Upstream => ["ingest", "augment", "split", "train", "predict", "visualize"];
    public bool UpstreamOptional => true;
    public bool Volatile => true;
    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.String("title", "", "Report title (default: the flow's name)"),
    ];

    public Task RunAsync(StageContext ctx)
    {
        var html = ReportBuilder.Build(ctx.Run, ctx.Settings.String("title"));
        var path = ctx.OutputPath("publish/report.html");
        File.WriteAllText(path, html, new UTF8Encoding(false));
        ctx.Rows["figures"] = Directory.Exists(Path.Combine(ctx.Run.RunDir, "figures"))
            ? Directory.GetFiles(Path.Combine(ctx.Run.RunDir, "figures"), "*.png").Length : 0;
        ctx.Log.Information("Wrote the report {ReportPath} ({Kilobytes:0} kB)", Path.Combine(ctx.Run.RunDir, "report.html"), html.Length / 1024.0);
        return Task.CompletedTask;
    }
}

/// <summary>Builds the report's HTML from a run folder. Every sentence is computed from the numbers.</summary>
public static class ReportBuilder
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Build(RunContext run, string title)
    {
        var dir = run.RunDir;
        var metrics = File.Exists(Path.Combine(dir, "metrics.json"))
            ? JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json"))) as JsonObject ?? [] : [];
        var record = RunRecord.TryRead(dir);
        var models = metrics["models"] as JsonObject ?? [];
        var cnns = models.Where(m => !IsDnn(m.Value)).Select(m => m.Key).ToList();
        var dnns = models.Where(m => IsDnn(m.Value)).Select(m => m.Key).ToList();
        var h = new StringBuilder();
        title = title.Length > 0 ? title : $"Facial expression recognition: {run.Flow.Name}";
        h.Append($"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(title)}</title><style>{Css}</style></head><body>");
        h.Append($"<h1>{E(title)}</h1><p class=\"sub\">Run {E(run.RunId)} of flow <code>{E(run.Flow.Name)}</code>, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, device {E(run.Device.ToString())}.</p>");
        h.Append($"<p class=\"lead\">{E(Headline(metrics))}</p>");

        // 1. CNN
        h.Append("<section id=\"cnn\"><h2>1. Convolutional neural network</h2>");
        if (cnns.Count == 0) h.Append("<p>This flow trained no convolutional model.</p>");
        foreach (var name in cnns) AppendModel(h, dir, name, models[name]!);
        h.Append("</section>");

        // 2. DNN
        h.Append("<section id=\"dnn\"><h2>2. Deep (fully connected) neural network</h2>");
        if (dnns.Count == 0) h.Append("<p>This flow trained no fully connected model.</p>");
        foreach (var name in dnns) AppendModel(h, dir, name, models[name]!);
        if (cnns.Count > 0 && dnns.Count > 0)
        {
            var bestCnn = cnns.MaxBy(n => D(models[n]!["best_valid_accuracy"]))!;
            var bestDnn = dnns.MaxBy(n => D(models[n]!["best_valid_accuracy"]))!;
            double c = D(models[bestCnn]!["best_valid_accuracy"]), d = D(models[bestDnn]!["best_valid_accuracy"]);
            var pc = D(models[bestCnn]!["parameters"]); var pd = D(models[bestDnn]!["parameters"]);
            h.Append($"<p>With {pd:N0} parameters against the CNN's {pc:N0}, the DNN {E(bestDnn)} reaches a best validation accuracy of {P(d)}, " +
                     $"{(d < c ? $"{P(c - d)} below" : d > c ? $"{P(d - c)} above" : "equal to")} the CNN {E(bestCnn)} ({P(c)}).</p>");
        }
        AppendFigure(h, dir, "train_validation_comparison.png", "Validation accuracy per epoch of every model");
        h.Append("</section>");

        // 3. Confusion matrix
        h.Append("<section id=\"confusion\"><h2>3. Confusion matrix</h2>");
        var ensemble = metrics["ensemble"] as JsonObject;
        if (ensemble?["valid"] is JsonObject valid)
        {
            var perClass = valid["per_class"] as JsonObject ?? [];
            string best = S(valid["best_class"]), worst = S(valid["worst_class"]);
            h.Append($"<p>On the validation set the ensemble recognises <b>{E(best)}</b> best (recall {F(perClass[best]?["recall"])}) and " +
                     $"<b>{E(worst)}</b> worst (recall {F(perClass[worst]?["recall"])}); overall accuracy {P(D(valid["accuracy"]))}, macro F1 {F(valid["macro_f1"])}.</p>");
            AppendFigure(h, dir, "confusion_ensemble_valid.png", "Ensemble, validation set, rows normalised");
            var member = S(ensemble["confusion_member"]);
            AppendFigure(h, dir, $"confusion_{member}_valid.png", $"{member}, validation set, rows normalised");
            if (ensemble["test"] is JsonObject test)
            {
                h.Append($"<p>On the labelled test set: accuracy {P(D(test["accuracy"]))}, best {E(S(test["best_class"]))}, worst {E(S(test["worst_class"]))}.</p>");
                AppendFigure(h, dir, "confusion_ensemble_test.png", "Ensemble, test set, rows normalised");
            }
            h.Append(PerClassTable(perClass));
        }
        else h.Append("<p>This run has no predictions (no predict stage).</p>");
        h.Append("</section>");

        // 4. Saliency; 5. Filters and layer outputs
        var visualize = metrics["visualize"] as JsonObject ?? [];
        h.Append("<section id=\"saliency\"><h2>4. Saliency maps</h2>");
        if (visualize.Count == 0) h.Append("<p>This run drew no explanations (no visualize stage).</p>");
        foreach (var (name, v) in visualize)
        {
            if (v?["masking"] is JsonObject m)
                h.Append($"<p>{E(name)}: keeping only the {P(D(m["keep_fraction"]))} most salient pixels keeps the prediction for {P(D(m["kept_prediction_top"]))} of the images shown; " +
                         $"keeping as many random pixels keeps it for {P(D(m["kept_prediction_random"]))}. " +
                         (D(m["kept_prediction_top"]) > D(m["kept_prediction_random"]) ? "The saliency map points at pixels the model relies on." : "Here saliency is no better than chance at finding the pixels the model relies on.") + "</p>");
            AppendFigure(h, dir, $"visualize_{name}_saliency.png", $"{name}: original, saliency (vanilla gradient), masked image, Grad-CAM");
            AppendFigure(h, dir, $"visualize_{name}_smoothgrad.png", $"{name}: SmoothGrad");
        }
        h.Append("</section><section id=\"filters\"><h2>5. Filters and layer outputs</h2>");
        foreach (var (name, v) in visualize)
        {
            if (v?["filters"] is JsonObject f)
                h.Append($"<p>{E(name)}: gradient ascent raised the mean activation of the {F0(f["count"])} filters of <code>{E(S(f["layer"]))}</code> from {F(f["mean_start_activation"])} to {F(f["mean_final_activation"])} ({F1(f["seconds"])} s).</p>");
            foreach (var png in Figures(dir, $"visualize_{name}_filters_")) AppendFigure(h, dir, png, $"{name}: filters by gradient ascent");
            foreach (var png in Figures(dir, $"visualize_{name}_outputs_")) AppendFigure(h, dir, png, $"{name}: layer outputs for one image");
        }
        h.Append("</section>");

        // 6. Ensemble
        h.Append("<section id=\"ensemble\"><h2>6. Ensemble</h2>");
        if (ensemble is not null)
        {
            var weights = ensemble["weights"] as JsonObject ?? [];
            h.Append("<table><tr><th>model</th><th>weight</th><th>validation accuracy</th><th>test accuracy</th></tr>");
            foreach (var (name, w) in weights)
                h.Append($"<tr><td>{E(name)}</td><td>{F(w)}</td><td>{P(D(models[name]?["valid_accuracy_tta"]))}</td><td>{Opt(models[name]?["test_accuracy"])}</td></tr>");
            h.Append($"<tr class=\"total\"><td>fitted ensemble</td><td>1</td><td>{P(D(ensemble["valid_accuracy"]))}</td><td>{Opt(ensemble["test"]?["accuracy"])}</td></tr>");
            h.Append($"<tr><td>equal weights</td><td>-</td><td>{P(D(ensemble["equal_weight_valid_accuracy"]))}</td><td>-</td></tr></table>");
            h.Append($"<p>Weights are non-negative, sum to 1 and minimise the validation log-loss (fitted {F(ensemble["valid_nll"])} against {F(ensemble["equal_weight_valid_nll"])} for equal weights). " +
                     $"Predictions {(ensemble["flip_tta"]?.GetValue<bool>() == true ? "average each image with its mirror image" : "use the images as they are")}. " +
                     (ensemble["fell_back_to_best_member"]?.GetValue<bool>() == true ? $"The fit fell back to the best member: {E(S(ensemble["explanation"]))}." : "") + "</p>");
            if (ensemble["submission"] is not null) h.Append("<p>The submission file is <code>predictions.csv</code> in the run folder.</p>");
        }
        else h.Append("<p>No ensemble in this run.</p>");
        h.Append("</section>");

        // 7. Leak
        h.Append("<section id=\"leak\"><h2>7. Validation leak</h2>");
        h.Append(E(LeakText(run, metrics)));
        h.Append("</section>");

        // Run facts
        h.Append("<section id=\"facts\"><h2>Run facts</h2><table>");
        Fact(h, "flow script", run.Flow.ScriptPath ?? run.Flow.Name);
        Fact(h, "parameters", string.Join(", ", run.Flow.Parameters.Select(kv => $"{kv.Key}={StageParameter.Canonical(kv.Value)}")));
        if (record is not null)
        {
            Fact(h, "command", record.Command);
            if (record.Sets.Count > 0) Fact(h, "--set", string.Join(", ", record.Sets.Select(kv => $"{kv.Key}={kv.Value}")));
            Fact(h, "versions", string.Join(", ", record.Versions.Select(kv => $"{kv.Key} {kv.Value}")));
            Fact(h, "started", record.StartedUtc.ToString("u", Inv));
        }
        if (metrics["data"] is JsonObject data)
        {
            Fact(h, "data", S(data["source"]) + (data["sha256"] is JsonArray shas && shas.Count > 0 ? "; sha256 " + string.Join(", ", shas.Select(x => S(x?["sha256"]))) : ""));
            Fact(h, "rows", data["rows"]?.ToJsonString() ?? "");
        }
        if (metrics["split"] is JsonObject split) Fact(h, "split", split.ToJsonString());
        Fact(h, "seed", run.Flow.Parameters.TryGetValue("seed", out var seed) ? StageParameter.Canonical(seed) : "not a flow parameter");
        Fact(h, "device", run.Device.ToString());
        h.Append("</table><table><tr><th>stage</th><th>cache</th><th>seconds</th><th>rows</th></tr>");
        foreach (var st in run.Completed)
            h.Append($"<tr><td>{E(st.Stage)}</td><td>{E(st.Status)}</td><td>{st.Seconds.ToString("0.00", Inv)}</td><td>{E(string.Join(", ", st.Rows.Select(kv => $"{kv.Key}={kv.Value}")))}</td></tr>");
        var total = record is null ? 0 : (DateTime.UtcNow - record.StartedUtc).TotalSeconds;
        h.Append($"<tr class=\"total\"><td>total so far</td><td></td><td>{total.ToString("0.0", Inv)}</td><td></td></tr></table></section>");
        h.Append("</body></html>");
        return h.ToString();
    }

    private static bool IsDnn(JsonNode? model) => S(model?["model"]).Contains("dnn", StringComparison.OrdinalIgnoreCase);

    private static void AppendModel(StringBuilder h, string dir, string name, JsonNode m)
    {
        h.Append($"<h3>{E(name)} (<code>{E(S(m["model"]))}</code>)</h3>");
        var summary = Path.Combine(dir, "models", $"{name}.summary.txt");
        if (File.Exists(summary)) h.Append($"<pre class=\"summary\">{E(File.ReadAllText(summary))}</pre>");
        h.Append($"<p>{E(name)} trained {F0(m["epochs_run"])} epochs in {F1(m["training_seconds"])} s ({F0(m["images_per_second"])} images/s); " +
                 $"its best validation accuracy, {P(D(m["best_valid_accuracy"]))} (loss {F(m["best_valid_loss"])}), came at epoch {F0(m["best_epoch"])}" +
                 (D(m["best_epoch"]) < D(m["epochs_run"]) ? ", and those weights were kept." : ".") + "</p>");
        AppendFigure(h, dir, $"train_{name}.png", $"{name}: accuracy and loss per epoch, training and validation");
    }

    private static IEnumerable<string> Figures(string dir, string prefix)
    {
        var figures = Path.Combine(dir, "figures");
        return Directory.Exists(figures)
            ? Directory.GetFiles(figures, prefix + "*.png").Select(Path.GetFileName).Order(StringComparer.Ordinal)!
            : [];
    }

    private static void AppendFigure(StringBuilder h, string dir, string file, string caption)
    {
        var path = Path.Combine(dir, "figures", file);
        if (!File.Exists(path)) return;
        h.Append($"<figure><img alt=\"{E(caption)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(path))}\"><figcaption>{E(caption)}</figcaption></figure>");
    }

    private static string PerClassTable(JsonObject perClass)
    {
        var t = new StringBuilder("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
        foreach (var (name, v) in perClass)
            t.Append($"<tr><td>{E(name)}</td><td>{F(v?["precision"])}</td><td>{F(v?["recall"])}</td><td>{F(v?["f1"])}</td><td>{F0(v?["support"])}</td></tr>");
        return t.Append("</table>").ToString();
    }

    private static string Headline(JsonObject metrics)
    {
        if (metrics["ensemble"] is not JsonObject e) return "This run did not reach the prediction stage.";
        var text = $"The fitted ensemble of {((e["weights"] as JsonObject)?.Count ?? 0)} models reaches {P(D(e["valid_accuracy"]))} validation accuracy " +
                   $"(best single model {E(S(e["best_member"]))}: {P(D(e["best_member_valid_accuracy"]))}; equal weights: {P(D(e["equal_weight_valid_accuracy"]))})";
        if (e["test"] is JsonObject t) text += $" and {P(D(t["accuracy"]))} on the labelled test set";
        return text + ".";
    }

    /// <summary>The leak section: this run's split, and a comparable run (same data) with the other setting if one exists.</summary>
    private static string LeakText(RunContext run, JsonObject metrics)
    {
        bool leaky = metrics["split"]?["leaky"]?.GetValue<bool>() == true;
        var twins = metrics["split"]?["rows"]?["twins_across_split"]?.GetValue<long>() ?? 0;
        var mine = D(metrics["ensemble"]?["valid_accuracy"]);
        var myTest = metrics["ensemble"]?["test"]?["accuracy"];
        var sha = metrics["data"]?["sha256"]?.ToJsonString() + metrics["data"]?["source"]?.ToJsonString();
        var text = leaky
            ? $"This run split AFTER flipping, like the seed report: {twins:N0} training images have their mirror twin in the validation set, so validation accuracy is inflated. "
            : $"This run split leak-free: no image has its mirror twin across the split ({twins} training rows share a source image with validation). ";
        var runs = Path.Combine(run.ArtifactsDir, "runs");
        if (!Directory.Exists(runs)) return text;
        foreach (var other in Directory.EnumerateDirectories(runs).OrderDescending(StringComparer.Ordinal))
        {
            if (other == run.RunDir || !File.Exists(Path.Combine(other, "metrics.json"))) continue;
            JsonObject? m;
            try { m = JsonNode.Parse(File.ReadAllText(Path.Combine(other, "metrics.json"))) as JsonObject; }
            catch (System.Text.Json.JsonException) { continue; }
            if (m?["split"]?["leaky"]?.GetValue<bool>() is not { } otherLeaky || otherLeaky == leaky || m["ensemble"] is null) continue;
            if (m["data"]?["sha256"]?.ToJsonString() + m["data"]?["source"]?.ToJsonString() != sha) continue;
            var theirs = D(m["ensemble"]?["valid_accuracy"]);
            var (leakyAcc, cleanAcc) = leaky ? (mine, theirs) : (theirs, mine);
            text += $"Run {Path.GetFileName(other)} on the same data split {(otherLeaky ? "after flipping (leaky)" : "leak-free")}: validation accuracy {P(leakyAcc)} leaky against {P(cleanAcc)} leak-free, an inflation of {P(leakyAcc - cleanAcc)}.";
            var theirTest = m["ensemble"]?["test"]?["accuracy"];
            if (myTest is not null && theirTest is not null)
                text += $" On the test set, which neither run saw: {P(D(leaky ? myTest : theirTest))} leaky against {P(D(leaky ? theirTest : myTest))} leak-free.";
            return text;
        }
        return text + "Run the same flow with --set split.leaky=" + (leaky ? "false" : "true") + " to measure the inflation beside this run.";
    }

    private static void Fact(StringBuilder h, string k, string v) => h.Append($"<tr><th>{E(k)}</th><td>{E(v)}</td></tr>");
    private static string E(string s) => WebUtility.HtmlEncode(s);
    private static string S(JsonNode? n) => n?.GetValueKind() == System.Text.Json.JsonValueKind.String ? n.GetValue<string>() : n?.ToJsonString() ?? "";
    private static double D(JsonNode? n) => n is null || n.GetValueKind() != System.Text.Json.JsonValueKind.Number ? double.NaN : n.GetValue<double>();
    private static string F(JsonNode? n) => D(n).ToString("0.000", Inv);
    private static string F1(JsonNode? n) => D(n).ToString("0.0", Inv);
    private static string F0(JsonNode? n) => D(n).ToString("0", Inv);
    private static string P(double v) => double.IsNaN(v) ? "n/a" : v.ToString("0.0%", Inv);
    private static string Opt(JsonNode? n) => n is null ? "-" : P(D(n));

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
