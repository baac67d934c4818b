using System.CommandLine;
using System.Text;
using Fer.Flow.Audit;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Cli;

/// <summary>`fer compare A B [C...] --out FILE.html`: one self-contained page comparing runs.</summary>
public static class CompareCommand
{
    public static Command Create(Option<string> artifactsOption)
    {
        var runs = new Argument<string[]>("runs") { Description = "Two or more run ids (or unique prefixes), latest, latest~N; or one sweep id (its trials, best first)", Arity = ArgumentArity.OneOrMore };
        var outOption = new Option<string>("--out") { Description = "The HTML file to write", Required = true };
        var command = new Command("compare", "One self-contained HTML page: what differs, validation curves overlaid, confusion matrices and figures side by side");
        command.Arguments.Add(runs);
        command.Options.Add(artifactsOption);
        command.Options.Add(outOption);
        command.SetAction(parse => Run(parse.GetValue(artifactsOption)!, parse.GetValue(runs) ?? [], parse.GetValue(outOption)!, Console.Out, Console.Error));
        return command;
    }

    /// <summary>Runs on one page at most (each brings every figure it drew).</summary>
    public const int MaxRuns = 24;

    public static int Run(string artifacts, IReadOnlyList<string> ids, string output, TextWriter stdout, TextWriter stderr)
    {
        List<RunSummary> runs;
        try
        {
            // One argument naming a sweep: its trials, best first.
            if (ids.Count == 1 && RunCatalog.Sweep(artifacts, ids[0]) is { } trials)
            {
                if (trials.Count < 2) { stderr.WriteLine($"error: sweep {ids[0]} has {trials.Count} run; compare needs two runs or more"); return ExitCodes.BadInput; }
                runs = [.. trials.Take(MaxRuns)];
                if (trials.Count > MaxRuns) stderr.WriteLine($"note: sweep {ids[0]} has {trials.Count} trials; the page shows the best {MaxRuns}");
            }
            else if (ids.Count < 2) { stderr.WriteLine("error: compare needs two runs or more, or a sweep id"); return ExitCodes.BadInput; }
            else runs = ids.Select(id => RunCatalog.Resolve(artifacts, id)).ToList();
        }
        catch (FlowDefinitionException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        // A run named twice is compared once; a page holds every figure of every run, so their number is bounded.
        runs = [.. runs.DistinctBy(r => r.RunId)];
        if (runs.Count < 2) { stderr.WriteLine($"error: compare needs two different runs; {string.Join(", ", ids)} name{(ids.Count == 1 ? "s" : "")} one"); return ExitCodes.BadInput; }
        if (runs.Count > MaxRuns) { stderr.WriteLine($"error: {runs.Count} runs to compare; one page holds at most {MaxRuns} (for a sweep, `fer runs` lists them all)"); return ExitCodes.BadInput; }
        foreach (var r in runs.Where(r => r.Record is null))
        {
            stderr.WriteLine($"error: {Path.Combine(r.Dir, RunRecord.FileName)}: missing or unreadable, so run {r.RunId} cannot be compared");
            return ExitCodes.BadInput;
        }
        var full = Path.GetFullPath(output);
        if (Directory.Exists(full)) { stderr.WriteLine($"error: --out {output}: is a folder; give a file name such as compare.html"); return ExitCodes.BadInput; }
        var page = RunComparison.Build(artifacts, runs);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
            try
            {
                File.WriteAllText(tmp, page.Html, new UTF8Encoding(false));
                File.Move(tmp, full, overwrite: true);
            }
            finally { File.Delete(tmp); }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot write {full}: {e.Message}");
            return ExitCodes.BadInput;
        }
        foreach (var m in page.Missing) stderr.WriteLine($"note: {m}");
        stdout.WriteLine($"wrote {full}: {runs.Count} runs, {page.Figures} figures, {page.Html.Length / 1024} kB");
        return ExitCodes.Ok;
    }
}
