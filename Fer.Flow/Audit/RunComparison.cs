using System.Globalization;
using System.Net;
using System.Text;
using Fer.Core.Plots;
using Fer.Core.Training;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;
using Fer.Flow.Stages;

namespace Fer.Flow.Audit;

/// <summary>
/// `fer compare`: one self-contained HTML page (figures embedded as base64 PNG) comparing runs: their facts, the
/// rows in which they differ, each model's validation curves of every run overlaid, the ensembles' confusion
/// matrices side by side, and every figure of each run in a column of its own.
/// </summary>
public static class RunComparison
{
    /// <summary>What the page was built from and what it could not find (a history evicted from the cache, ...).</summary>
    public sealed record Page(string Html, int Figures, IReadOnlyList<string> Missing);

    public static Page Build(string artifactsDir, IReadOnlyList<RunSummary> runs)
    {
        if (runs.Count < 2) throw new ArgumentException("compare needs two runs or more", nameof(runs));
        var records = runs.Select(r => r.Record ?? throw new ArgumentException($"run {r.RunId} has no run.json")).ToList();
        var missing = new List<string>();
        int figures = 0;
        var html = new StringBuilder();
        html.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Fer: comparing runs</title>
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
            table { border-collapse: collapse; margin: 8px 0 24px; font-size: 14px; }
            th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
            th { background: #f2f2f2; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; }
            td.diff { background: #fff3cd; }
            code { font-size: 12px; }
            .row { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
            .row figure { margin: 0; flex: 1 1 0; min-width: 320px; max-width: 760px; }
            .row figure img { width: 100%; }
            .row figure.wide { flex: 1 1 100%; max-width: 1280px; } /* two panels: shown at their own size where the page allows */
            figcaption { font-size: 13px; color: #555; }
            img { max-width: 100%; }
            table.figures td { width: {{WIDTH}}%; }
            table.figures img { width: 100%; }
            </style></head><body>
            """.Replace("{{WIDTH}}", (100 / runs.Count).ToString(CultureInfo.InvariantCulture)));
        html.Append($"<h1>Comparing {runs.Count} runs</h1>\n");

        // The runs.
        html.Append("<h2>Runs</h2>\n<table><tr><th>run</th><th>flow</th><th>started (UTC)</th><th>status</th><th>ensemble valid accuracy</th><th>command</th></tr>\n");
        foreach (var r in runs)
            html.Append($"<tr><td>{E(r.RunId)}</td><td>{E(r.Flow)}</td><td>{E(r.StartedUtc?.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "?")}</td>" +
                        $"<td>{E(r.Status.Text())}</td><td class=\"num\">{(r.EnsembleValidAccuracy is { } a ? a.ToString("0.0000", CultureInfo.InvariantCulture) : "-")}</td>" +
                        $"<td><code>{E(r.Record?.Command ?? "")}</code></td></tr>\n");
        html.Append("</table>\n");

        // Where they differ.
        var rows = RunDiff.Compare(records);
        html.Append($"<h2>What differs</h2>\n<p>{rows.Count} rows differ (timing left out); values that differ from the first run's are marked.</p>\n");
        html.Append("<table><tr><th>section</th><th>key</th>");
        foreach (var r in runs) html.Append($"<th>{E(r.RunId)}</th>");
        if (runs.Count == 2) html.Append("<th>change</th>");
        html.Append("</tr>\n");
        foreach (var row in rows)
        {
            html.Append($"<tr><td>{E(row.Section.ToString().ToLowerInvariant())}</td><td><code>{E(row.Key)}</code></td>");
            for (int i = 0; i < row.Values.Count; i++)
            {
                bool differs = i > 0 && RunDiff.Compute2(row.Section, row.Key, row.Values[0], row.Values[i]).Changed;
                var v = row.Values[i];
                html.Append($"<td class=\"{(v is not null && RunDiff.TryNumber(v, out _) ? "num" : "")}{(differs ? " diff" : "")}\">{E(RunDiff.Display(v))}</td>");
            }
            if (runs.Count == 2) html.Append($"<td class=\"num\">{E(RunDiff.Compute2(row.Section, row.Key, row.Values[0], row.Values[1]).Change)}</td>");
            html.Append("</tr>\n");
        }
        html.Append("</table>\n");

        // Each model's validation curves, every run overlaid.
        var cache = new StageCache(Path.Combine(artifactsDir, "cache"));
        var members = new List<string>();
        foreach (var rec in records)
            foreach (var (node, _) in rec.MetricsOf<MemberMetrics>())
                if (!members.Contains(node)) members.Add(node);
        if (members.Count > 0)
        {
            html.Append("<h2>Validation accuracy and loss per epoch</h2>\n<div class=\"row\">\n");
            foreach (var node in members)
            {
                var histories = new Dictionary<string, IReadOnlyList<EpochRecord>>(StringComparer.Ordinal);
                for (int i = 0; i < records.Count; i++)
                {
                    var report = records[i].Stages.FirstOrDefault(s => s.Stage == node && s.Reports<MemberMetrics>());
                    if (report is null) continue;
                    var history = ReadHistory(cache, report);
                    if (history is null) { missing.Add($"{runs[i].RunId}: the training history of {node} is no longer in the cache"); continue; }
                    histories[runs[i].RunId] = history;
                }
                if (histories.Count == 0) continue;
                var png = Render(path => TrainingCurves.SaveRunsOverlay(path, histories, node));
                html.Append(Figure(png, $"{node}, one line per run", "wide"));
                figures++;
            }
            html.Append("</div>\n");
        }

        // The ensembles' confusion matrices side by side.
        html.Append("<h2>Ensemble confusion matrices (validation)</h2>\n<div class=\"row\">\n");
        foreach (var r in runs)
        {
            var path = Path.Combine(r.Dir, "figures", "confusion_ensemble_valid.png");
            if (ReadRegularFile(path) is { } png) { html.Append(Figure(png, r.RunId)); figures++; }
            else missing.Add($"{r.RunId}: no figures/confusion_ensemble_valid.png");
        }
        html.Append("</div>\n");

        // Every figure of each run, in a column per run.
        var names = runs.SelectMany(r => FigureNames(r.Dir)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        html.Append("<h2>Figures of each run</h2>\n<table class=\"figures\"><tr>");
        foreach (var r in runs) html.Append($"<th>{E(r.RunId)}</th>");
        html.Append("</tr>\n");
        foreach (var name in names)
        {
            html.Append($"<tr><th colspan=\"{runs.Count}\">{E(name)}</th></tr>\n<tr>");
            foreach (var r in runs)
            {
                var png = ReadRegularFile(Path.Combine(r.Dir, "figures", name));
                html.Append(png is null ? "<td>(none)</td>" : $"<td><img alt=\"{E(name)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\"></td>");
                if (png is not null) figures++;
            }
            html.Append("</tr>\n");
        }
        html.Append("</table>\n");
        if (missing.Count > 0)
            html.Append("<h2>Not shown</h2>\n<ul>").Append(string.Concat(missing.Select(m => $"<li>{E(m)}</li>"))).Append("</ul>\n");
        html.Append("</body></html>\n");
        return new Page(html.ToString(), figures, missing);
    }

    /// <summary>The member's history through its typed output in the cache entry the run used; null when gone or damaged.</summary>
    private static IReadOnlyList<EpochRecord>? ReadHistory(StageCache cache, StageReport report)
    {
        var dir = cache.EntryDir(report.Stage, report.Fingerprint);
        try
        {
            var member = (TrainedMember)OutputStore.Read(typeof(TrainedMember), dir);
            if (ReadRegularFile(member.History.Path) is null) return null;
            return member.History.ReadAsync().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or InvalidCastException) { return null; }
    }

    private static IEnumerable<string> FigureNames(string runDir)
    {
        var dir = Path.Combine(runDir, "figures");
        if (!Directory.Exists(dir)) return [];
        return Directory.EnumerateFiles(dir, "*.png").Where(IsRegularFile).Select(Path.GetFileName).OfType<string>();
    }

    private static bool IsRegularFile(string path)
    {
        var info = new FileInfo(path);
        return info.Exists && info.LinkTarget is null && (info.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0;
    }

    /// <summary>The bytes of a regular file (not a link, device or folder), or null.</summary>
    private static byte[]? ReadRegularFile(string path) => IsRegularFile(path) ? File.ReadAllBytes(path) : null;

    private static byte[] Render(Action<string> save)
    {
        var tmp = Path.Combine(Path.GetTempPath(), $"fer-compare-{Guid.NewGuid():N}.png");
        try { save(tmp); return File.ReadAllBytes(tmp); }
        finally { File.Delete(tmp); }
    }

    private static string Figure(byte[] png, string caption, string? cssClass = null) =>
        $"<figure{(cssClass is null ? "" : $" class=\"{cssClass}\"")}><img src=\"data:image/png;base64,{Convert.ToBase64String(png)}\" alt=\"{E(caption)}\"><figcaption>{E(caption)}</figcaption></figure>\n";

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
