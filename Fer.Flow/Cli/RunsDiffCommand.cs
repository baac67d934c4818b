using System.CommandLine;
using System.Text.Json;
using Fer.Flow.Audit;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Cli;

/// <summary>`fer runs diff A B`: what differs between two runs' parameters, settings, inputs and metrics.</summary>
public static class RunsDiffCommand
{
    public sealed record DiffQuery(string Artifacts, string A, string B, bool All = false, bool Markdown = false, bool Json = false, bool Timing = false);

    public static Command Create(Option<string> artifactsOption)
    {
        var a = new Argument<string>("a") { Description = "Run id (or a unique prefix), latest, or latest~N" };
        var b = new Argument<string>("b") { Description = "Run id (or a unique prefix), latest, or latest~N" };
        var all = new Option<bool>("--all") { Description = "Every row, unchanged ones too" };
        var md = new Option<bool>("--md") { Description = "A Markdown table" };
        var json = new Option<bool>("--json") { Description = "JSON: the runs and their rows, with numeric differences" };
        var timing = new Option<bool>("--timing") { Description = "Also seconds and images per second (they differ between any two runs)" };
        var command = new Command("diff", "Rows of section, key, A, B, change for parameters, settings, hyperparameters, input hashes and metrics; changed rows only unless --all");
        command.Arguments.Add(a);
        command.Arguments.Add(b);
        foreach (var o in new Option[] { artifactsOption, all, md, json, timing }) command.Options.Add(o);
        command.SetAction(parse => Run(new DiffQuery(parse.GetValue(artifactsOption)!, parse.GetValue(a)!, parse.GetValue(b)!,
            parse.GetValue(all), parse.GetValue(md), parse.GetValue(json), parse.GetValue(timing)), Console.Out, Console.Error));
        return command;
    }

    public static int Run(DiffQuery q, TextWriter stdout, TextWriter stderr)
    {
        if (q.Markdown && q.Json) { stderr.WriteLine("error: --md and --json cannot be combined"); return ExitCodes.BadInput; }
        RunSummary a, b;
        try
        {
            a = RunCatalog.Resolve(q.Artifacts, q.A);
            b = RunCatalog.Resolve(q.Artifacts, q.B);
        }
        catch (FlowDefinitionException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        foreach (var r in new[] { a, b })
            if (r.Record is null)
            {
                stderr.WriteLine($"error: {Path.Combine(r.Dir, RunRecord.FileName)}: missing or unreadable, so run {r.RunId} cannot be compared");
                return ExitCodes.BadInput;
            }
        var rows = RunDiff.Compute(a.Record!, b.Record!, new RunDiffOptions(q.All, q.Timing));
        if (q.Json) WriteJson(a.RunId, b.RunId, rows, stdout);
        else if (q.Markdown) WriteMarkdown(a.RunId, b.RunId, rows, stdout);
        else WriteTable(a.RunId, b.RunId, rows, stdout);
        return ExitCodes.Ok;
    }

    public static void WriteTable(string a, string b, IReadOnlyList<DiffRow> rows, TextWriter stdout)
    {
        if (rows.Count == 0) { stdout.WriteLine($"runs {a} and {b} do not differ (--all lists every row)"); return; }
        stdout.WriteLine($"A = {a}, B = {b}; change is B - A");
        var table = ConsoleTables.Create(stdout, "section", "key", ">A", ">B", ">change");
        foreach (var r in rows)
            table.AddTextRow(Section(r.Section), r.Key, RunDiff.Display(r.A), RunDiff.Display(r.B), r.Change);
        ConsoleTables.Write(stdout, table);
    }

    public static void WriteMarkdown(string a, string b, IReadOnlyList<DiffRow> rows, TextWriter stdout)
    {
        stdout.WriteLine($"| section | key | {Cell(a)} | {Cell(b)} | change |");
        stdout.WriteLine("|---|---|---:|---:|---:|");
        foreach (var r in rows)
            stdout.WriteLine($"| {Section(r.Section)} | {Cell(r.Key)} | {Cell(RunDiff.Display(r.A))} | {Cell(RunDiff.Display(r.B))} | {Cell(r.Change)} |");
    }

    public static void WriteJson(string a, string b, IReadOnlyList<DiffRow> rows, TextWriter stdout)
    {
        var doc = new
        {
            a, b,
            rows = rows.Select(r => new { section = Section(r.Section), key = r.Key, a = r.A, b = r.B, change = r.Change, delta = r.Delta }),
        };
        stdout.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions(AuditCommands.JsonOut) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never }));
    }

    public static string Section(DiffSection s) => s.ToString().ToLowerInvariant();

    /// <summary>
    /// A Markdown table cell: line breaks and other control characters as visible escapes (a cell is one line), and
    /// Markdown's punctuation backslash-escaped, so a value from a run (a path, a setting) is shown, never rendered.
    /// </summary>
    internal static string Cell(string s)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var c in Fer.Core.Storage.SafeText.Terminal(s))
        {
            if (c is '\\' or '|' or '`' or '*' or '_' or '[' or ']' or '<' or '>' or '#' or '!' or '~') sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
