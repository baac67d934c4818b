using System.Text.Json;
using Fer.Flow.Cli;
using Fer.Flow.Tests.EndToEnd;

namespace Fer.Flow.Tests.Hardening;

/// <summary>Rules 1, 5, 6 and 10 through the command: exit 2 and one line for every user error, before the lock and before
/// anything runs where it can be known then; the recorded command reruns the run.</summary>
[Collection(EndToEndCollection.Name)]
public class CliHardeningTests
{
    private static async Task<(int Code, string Errors)> Run(TinyFlow flow, params string[] args) =>
        await Shell.WithinSeconds(300, flow.RunAsync(args));

    [Theory]
    [InlineData("fifo", "is a FIFO (named pipe), not a regular file")]
    [InlineData("/dev/zero", "is a character device, not a regular file")]
    [InlineData("dir", "is a directory, not a file")]
    [InlineData("loop", "is a symbolic link loop")]
    public async Task ANonRegularDataFileIsExitTwoNamingItBeforeTheLockIsTaken(string what, string problem)
    {
        using var flow = new TinyFlow();
        var path = what switch
        {
            "fifo" => flow.Dir["f.csv"],
            "dir" => flow.Dir["data"],
            "loop" => flow.Dir["l1.csv"],
            _ => what,
        };
        if (what == "fifo") Assert.Equal(0, Shell.Run("mkfifo", path).Code);
        if (what == "dir") Directory.CreateDirectory(path);
        if (what == "loop") { File.CreateSymbolicLink(path, flow.Dir["l2.csv"]); File.CreateSymbolicLink(flow.Dir["l2.csv"], path); }
        var (code, errors) = await Shell.WithinSeconds(60, flow.RunAsync("--set", $"train={path}"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal($"error: {path}: {problem}", errors.Trim());
        Assert.False(File.Exists(Path.Combine(flow.Artifacts, ".lock")), "the artifacts lock was taken");
    }

    /// <summary>Found by the adversarial pass (tests/adversarial/pass.sh): a flow script that is a FIFO blocked `fer run`
    /// forever, /dev/zero ran it out of memory (exit 1).</summary>
    [Theory]
    [InlineData("fifo", "is a FIFO (named pipe), not a regular file; a flow script must be a regular file")]
    [InlineData("/dev/zero", "is a character device, not a regular file; a flow script must be a regular file")]
    public async Task AFlowScriptThatIsNoRegularFileIsExitTwoNamingIt(string what, string problem)
    {
        using var dir = new TempDir();
        var path = what == "fifo" ? dir["flow.fsx"] : what;
        if (what == "fifo") Assert.Equal(0, Shell.Run("mkfifo", path).Code);
        var errors = new StringWriter();
        var code = await Shell.WithinSeconds(60, FlowCommand.RunAsync(new FlowRequest(path, dir["artifacts"], [], Device: "cpu", Console: false), errors));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal($"error: {path}: {problem}", errors.ToString().Trim());
    }

    /// <summary>Found by the adversarial pass: a bad --device was found only after the run had started (a run folder, a log
    /// line on the console besides the error); bad environment variables gave exit 1 (FER_SCRIPT_CACHE naming a file) or
    /// were ignored (FER_SLURM_POLL_SECONDS=abc).</summary>
    [Fact]
    public async Task ABadDeviceOrEnvironmentVariableIsExitTwoWithOneLineBeforeARunStarts()
    {
        using var flow = new TinyFlow();
        var (code, errors) = await flow.RunWithDeviceAsync("tpu");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal("error: --device tpu: expected auto, cpu or cuda", errors.Trim());
        Assert.False(Directory.Exists(Path.Combine(flow.Artifacts, "runs")), "a run started");

        foreach (var (variable, value, args, expected) in new[]
        {
            ("FER_SCRIPT_CACHE", flow.Script, Array.Empty<string>(), $"error: FER_SCRIPT_CACHE={flow.Script}: is not a folder; give a folder for compiled scripts (or FER_SCRIPT_CACHE=off to interpret them)"),
            ("FER_SLURM_POLL_SECONDS", "abc", new[] { "--executor", "slurm" }, "error: FER_SLURM_POLL_SECONDS=abc: give seconds above 0 and at most 60 (or unset it: 2 s)"),
        })
        {
            using var fer = new FerProcess(new Dictionary<string, string> { [variable] = value },
                ["run", flow.Script, "--artifacts", flow.Artifacts, "--device", "cpu", .. args]);
            Assert.Equal(ExitCodes.BadInput, fer.WaitForExit(TimeSpan.FromMinutes(2)));
            Assert.Equal([expected], fer.Output.Where(l => l.Trim().Length > 0));
        }
    }

    [Theory]
    [InlineData("count=10", "validation")]                       // the split leaves no validation image
    [InlineData("split.valid_fraction=0.001", "validation")]
    [InlineData("split.mode=usage", "mode usage needs Training and PublicTest rows")] // synthetic faces have no PublicTest rows
    public async Task AnEmptyValidationSetStopsAtTheSplitWithExitTwoAndTrainsNothing(string set, string text)
    {
        using var flow = new TinyFlow();
        var (code, errors) = await Run(flow, "--set", set);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains(text, errors);
        Assert.Single(errors.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(flow.Artifacts, "cache", "train.cnn")) &&
                     Directory.EnumerateDirectories(Path.Combine(flow.Artifacts, "cache", "train.cnn")).Any(), "a member was trained");
        var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(flow.LatestRunDir(), "run.json"))).RootElement;
        Assert.Equal("failed", run.GetProperty("status").GetString());
        Assert.Equal("split", run.GetProperty("failed_stage").GetString());
    }

    [Theory]
    [InlineData("ingest.test_fraction=1.5", "test_fraction")]
    [InlineData("count=0", "count")]
    [InlineData("train.cnn.lr=-1", "lr")]
    [InlineData("train.epochs=0", "epochs")]
    public async Task OutOfRangeSettingsAreExitTwoAtPlanTimeBeforeAnyStageRuns(string set, string setting)
    {
        using var flow = new TinyFlow();
        var (code, errors) = await Run(flow, "--set", set);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains(setting, errors);
        Assert.Single(errors.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(flow.Artifacts, "cache")), "a stage ran");
    }

    [Fact]
    public async Task TestImagesOfAnotherSizeNameTheTestFileWithExitTwo()
    {
        using var flow = new TinyFlow();
        SynthCommand.Write(flow.Dir["48"], 40, "course", 1, 48);
        SynthCommand.Write(flow.Dir["24"], 40, "course", 1, 24);
        var test = Path.Combine(flow.Dir["24"], "test.csv");
        var (code, errors) = await Run(flow, "--set", $"train={Path.Combine(flow.Dir["48"], "train.csv")}", "--set", $"ingest.test={test}");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains($"{test}: its images are 24x24", errors);
        Assert.Contains("48x48", errors);
    }

    [Theory]
    [InlineData(double.NaN, "artifacts", "--wait NaN: give seconds from 0")]
    [InlineData(-1.0, "artifacts", "--wait -1")]
    [InlineData(double.PositiveInfinity, "artifacts", "--wait")]
    [InlineData(0.0, "", "--artifacts: give a folder")]
    public async Task BadOptionsAreExitTwoWithOneLine(double wait, string artifacts, string text)
    {
        using var dir = new TempDir();
        var errors = new StringWriter();
        var code = await FlowCommand.RunAsync(new FlowRequest(Repo.Flow("quickstart.fsx"), artifacts == "" ? "" : dir[artifacts], [], WaitSeconds: wait, Console: false), errors);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains(text, errors.ToString());
        Assert.Single(errors.ToString().Trim().Split('\n'));
    }

    /// <summary>The real program: a parse error, --wait nan and bad synth arguments are one line and exit 2, no stack trace.</summary>
    [Fact]
    public void EscapeSequencesAndLineBreaksInANameReachTheTerminalAsTextOnOneLine()
    {
        using var dir = new TempDir();
        // A data file whose name clears the screen, sets the window title and starts a second line.
        var name = dir["x\u001b[2J\u001b]0;pwned\u0007\nsecond line.csv"];
        using var fer = new FerProcess("run", Repo.Flow("quickstart.fsx"), "--set", $"ingest.train={name}", "--artifacts", dir["a"]);
        Assert.Equal(ExitCodes.BadInput, fer.WaitForExit(TimeSpan.FromMinutes(2)));
        var error = Assert.Single(fer.Output, l => l.Length > 0);
        Assert.DoesNotContain('\u001b', error);
        Assert.DoesNotContain('\u0007', error);
        Assert.Contains("x\\x1b[2J\\x1b]0;pwned\\x07\\nsecond line.csv", error);
        Assert.StartsWith("error: ", error);
    }

    /// <summary>
    /// A real terminal (a pseudo-terminal from script(1), where Spectre.Console writes colours and would obey markup):
    /// a run.json whose flow name clears the screen, retitles the window, rings the bell and holds Spectre markup shows
    /// all of it as text in `fer runs`; the only escape sequences on the terminal are the table's own colours.
    /// </summary>
    [SkippableFact]
    public async Task OnARealTerminalInjectedEscapesAndMarkupInARunAreShownAsText()
    {
        Skip.IfNot(File.Exists("/usr/bin/script"), "util-linux's script(1) is not installed");
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        var runJson = Path.Combine(flow.LatestRunDir(), "run.json");
        var record = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(runJson))!;
        record["flow"] = "evil\u001b[2J\u001b]0;pwned\u0007[red]x[/]";
        File.WriteAllText(runJson, record.ToJsonString());
        var fer = Path.Combine(AppContext.BaseDirectory, "fer.dll");
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/script") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-q", "-e", "-c", $"stty cols 250; dotnet '{fer}' runs --artifacts '{flow.Artifacts}'", "/dev/null" }) start.ArgumentList.Add(a);
        start.Environment["TERM"] = "xterm-256color";
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000));
        Assert.Equal(0, process.ExitCode);
        Assert.Contains("\\x1b[2J\\x1b]0;pwned\\x07[red]x[/]", output);   // the name, as text, markup not obeyed
        // (Ordinal: a culture-aware search ignores control characters and would find "[2J" in the escaped text.)
        Assert.DoesNotContain("\u001b[2J", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b]", output, StringComparison.Ordinal);  // no operating-system command (window title)
        Assert.DoesNotContain('\u0007', output);
        // Whatever escapes remain are Spectre's colours (SGR) and the modes .NET sets on a terminal it reads keys from
        // (application cursor keys ESC[?1h, keypad ESC=), none from the run.
        var escapes = System.Text.RegularExpressions.Regex.Matches(output, "\u001b(\\[[0-9;?]*[A-Za-z]|[=>])?").Select(m => m.Value).Distinct().ToList();
        Assert.All(escapes, e => Assert.Matches(@"^\u001b(\[[0-9;?]*[mhl]|[=>])$", e));
    }

    /// <summary>An argument beginning with @ is an argument (a --where on @l), not a response file to read.</summary>
    [Fact]
    public void AnArgumentBeginningWithAtIsTakenAsItIs()
    {
        using var dir = new TempDir();
        using var fer = new FerProcess("logs", "--artifacts", dir["a"], "--where", "@l = 'Error'");
        fer.WaitForExit(TimeSpan.FromMinutes(2));
        var output = string.Join('\n', fer.Output);
        Assert.DoesNotContain("esponse file", output);
        Assert.Contains("no runs", output);
    }

    [Fact]
    public void TheProgramAnswersBadArgumentsWithOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["afile"], "");
        string[][] cases =
        [
            ["run", Repo.Flow("quickstart.fsx"), "--wait", "nan", "--artifacts", dir["a"]],
            ["run", Repo.Flow("quickstart.fsx"), "--wait", "soon", "--artifacts", dir["a"]],
            ["run", Repo.Flow("quickstart.fsx"), "--artifacts", ""],
            ["synth", "--out", dir["s"], "--count", "3"],
            ["synth", "--out", dir["s"], "--count", "abc"],
            ["synth", "--out", dir["s"], "--side", "0"],
            ["synth", "--out", dir["afile"]],
            ["logs", "--artifacts", dir["a"], "--where", "Stage = "],
        ];
        foreach (var args in cases)
        {
            using var fer = new FerProcess(args);
            var code = fer.WaitForExit(TimeSpan.FromMinutes(2));
            var output = string.Join('\n', fer.Output);
            Assert.True(code == 2, $"{string.Join(' ', args)}: exit {code}: {output}");
            Assert.DoesNotContain("   at ", output);
            Assert.StartsWith("error: ", output);
        }
    }

    /// <summary>A bad CSV row through the real program with its console log: the message, no stack trace (that is in log.clef).</summary>
    [Fact]
    public void ABadRowPrintsNoStackTraceOnTheConsoleOnlyInTheLog()
    {
        using var flow = new TinyFlow();
        var bad = Path.Combine(Repo.Root, "tests", "data", "bad", "pixel_256.csv");
        using var fer = new FerProcess("run", flow.Script, "--set", $"train={bad}", "--artifacts", flow.Artifacts, "--device", "cpu");
        Assert.Equal(2, fer.WaitForExit(TimeSpan.FromMinutes(3)));
        var output = string.Join('\n', fer.Output);
        Assert.Contains($"{bad}:3: pixel 3 is 256", output);
        Assert.DoesNotContain("   at ", output);
        Assert.Contains("   at ", File.ReadAllText(Path.Combine(flow.LatestRunDir(), "log.clef")));
    }

    /// <summary>The recorded command, pasted into a shell, gives the same arguments in the same folder (values with
    /// spaces and quotes quoted; --artifacts, --wait, --device and --parallel recorded).</summary>
    [Fact]
    public async Task TheRecordedCommandRerunsTheSameRun()
    {
        using var flow = new TinyFlow();
        var spaced = flow.Dir["my data's folder"];
        SynthCommand.Write(spaced, 40, "kaggle", 1);
        var train = Path.Combine(spaced, "fer2013.csv");
        var errors = new StringWriter();
        string[] sets = [$"train={train}", "split.valid_fraction=0.25"];
        var code = await FlowCommand.RunAsync(new FlowRequest(flow.Script, flow.Artifacts, sets, Fer.Flow.Pipeline.RunMode.Only, "ingest", "cpu", WaitSeconds: 2.5, Console: false), errors);
        Assert.True(code == 0, errors.ToString());
        var command = JsonDocument.Parse(File.ReadAllText(Path.Combine(flow.LatestRunDir(), "run.json"))).RootElement.GetProperty("command").GetString()!;
        // `fer` replaced by a function printing its arguments and the folder it runs in.
        var (shell, printed) = Shell.Run("bash", "-c", "fer() { pwd; printf '%s\\n' \"$@\"; }; cd / && " + command);
        Assert.Equal(0, shell);
        string[] expected = [Environment.CurrentDirectory, "run", flow.Script, "--set", sets[0], "--set", sets[1], "--only", "ingest",
            "--device", "cpu", "--artifacts", flow.Artifacts, "--wait", "2.5"];
        Assert.Equal(expected, printed.TrimEnd('\n').Split('\n'));
    }
}
