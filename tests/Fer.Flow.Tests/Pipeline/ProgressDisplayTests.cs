using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Pipeline;

/// <summary>Plain progress lines (CI, pipes): the first report at once, then one per interval, and the last on finishing.</summary>
public class ProgressDisplayTests
{
    [Fact]
    public void WithALongIntervalOnlyTheFirstAndTheLastReportArePrinted()
    {
        var output = new StringWriter();
        var display = ProgressDisplay.Plain(output, TimeSpan.FromHours(1));
        var due = new List<bool>();
        using (var row = display.Start("ingest a.csv"))
            for (int i = 1; i <= 5; i++) due.Add(row.Report($"ingest a.csv: {i}/5", i, 5));

        Assert.Equal([true, false, false, false, false], due);
        Assert.Equal(["ingest a.csv: 1/5", "ingest a.csv: 5/5"], Lines(output));
    }

    [Fact]
    public void WithNoIntervalEveryReportIsPrintedAndTheLastIsNotRepeated()
    {
        var output = new StringWriter();
        var display = ProgressDisplay.Plain(output, TimeSpan.Zero);
        using (var row = display.Start("visualize cnn"))
            for (int i = 1; i <= 3; i++) Assert.True(row.Report($"step {i}", i, 3));

        Assert.Equal(["step 1", "step 2", "step 3"], Lines(output));
    }

    [Fact]
    public void ARowThatNeverReportedPrintsNothingAndFinishingTwiceIsHarmless()
    {
        var output = new StringWriter();
        var row = ProgressDisplay.Plain(output).Start("train.cnn");
        row.Dispose();
        row.Dispose();
        Assert.Empty(Lines(output));
        Assert.Throws<ArgumentOutOfRangeException>(() => ProgressDisplay.Plain(output, TimeSpan.FromSeconds(-1)));
        Assert.Throws<ArgumentException>(() => ProgressDisplay.Plain(output).Start(" "));
    }

    [Fact]
    public async Task RowsOfTasksRunningAtOnceKeepTheirLinesWhole()
    {
        var output = new StringWriter();
        var display = ProgressDisplay.Plain(output, TimeSpan.Zero);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            using var row = display.Start($"task {t}");
            for (int i = 0; i < 200; i++) row.Report($"task {t} step {i:000}", i, 200);
        })));
        var lines = Lines(output);
        Assert.Equal(800, lines.Count);
        Assert.All(lines, l => Assert.Matches(@"^task \d step \d{3}$", l));
        for (int t = 0; t < 4; t++)
            Assert.Equal(Enumerable.Range(0, 200).Select(i => $"task {t} step {i:000}"), lines.Where(l => l.StartsWith($"task {t} ")));
    }

    private static List<string> Lines(StringWriter output) =>
        output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
}
