using System.CommandLine;
using System.Runtime.InteropServices;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

Fer.Core.TorchRuntime.Configure();

var artifactsOption = new Option<string>("--artifacts") { Description = "Artifacts folder (cache and runs)", DefaultValueFactory = _ => "artifacts" };
// Checked where the option is defined, so that every command taking it (run, stages, runs, logs, predict, export,
// compare) refuses an empty or NUL-holding folder as a parse error: one line, exit 2.
artifactsOption.Validators.Add(result =>
{
    if (FlowCommand.ArtifactsProblem(result.GetValueOrDefault<string>()) is { } bad) result.AddError(bad);
});
var setOption = new Option<string[]>("--set") { Description = "Set a flow parameter or stage setting: name=value, stage.name=value, train.member.name=value", AllowMultipleArgumentsPerToken = false };
var fromOption = new Option<string?>("--from") { Description = "Recompute this stage and every stage after it" };
var onlyOption = new Option<string?>("--only") { Description = "Run this stage alone from cached inputs" };
var deviceOption = new Option<string>("--device") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
var waitOption = new Option<double>("--wait") { Description = "Seconds to wait for another run holding the artifacts folder", DefaultValueFactory = _ => 0 };
var parallelOption = new Option<int>("--parallel") { Description = "How many stages (e.g. ensemble members) compute at once", DefaultValueFactory = _ => 1 };
var flowArgument = new Argument<string>("flow") { Description = "Flow script, e.g. flows/quickstart.fsx" };

var run = new Command("run", "Run a flow: reuse every valid cached stage, compute the rest");
run.Arguments.Add(flowArgument);
var executorOption = new Option<string>("--executor") { Description = "local: this process; slurm: each stage a Slurm job (a sweep, a job array)", DefaultValueFactory = _ => "local" };
executorOption.AcceptOnlyFromAmong("local", "slurm");
var partitionOption = new Option<string?>("--slurm-partition") { Description = "Slurm partition of the jobs" };
var gresOption = new Option<string?>("--slurm-gres") { Description = "Generic resources per job, e.g. gpu:1" };
var timeOption = new Option<string?>("--slurm-time") { Description = "Time limit per job, e.g. 02:00:00" };
var cpusOption = new Option<int?>("--slurm-cpus") { Description = "CPUs per job" };
var slurmArgOption = new Option<string[]>("--slurm-arg") { Description = "Any other sbatch option, e.g. --slurm-arg=--mem=16G" };
var jobOfOption = new Option<string?>("--job-of") { Hidden = true };
var trialOfOption = new Option<string?>("--trial-of") { Hidden = true };
var sweepOption = new Option<string[]>("--sweep") { Description = "Run a trial per combination: --sweep epochs=10,20 --sweep train.cnn.lr=1e-3,5e-4", AllowMultipleArgumentsPerToken = false };
foreach (var o in new Option[] { artifactsOption, setOption, fromOption, onlyOption, deviceOption, waitOption, parallelOption, sweepOption, executorOption,
             partitionOption, gresOption, timeOption, cpusOption, slurmArgOption, jobOfOption, trialOfOption }) run.Options.Add(o);
run.SetAction(async (parse, ct) =>
{
    var from = parse.GetValue(fromOption);
    var only = parse.GetValue(onlyOption);
    if (from is not null && only is not null)
    {
        Console.Error.WriteLine("error: --from and --only cannot be combined");
        return ExitCodes.BadInput;
    }
    var jobOf = parse.GetValue(jobOfOption);
    var request = new FlowRequest(parse.GetValue(flowArgument)!, parse.GetValue(artifactsOption)!, parse.GetValue(setOption) ?? [],
        from is not null ? RunMode.From : only is not null ? (jobOf is null ? RunMode.Only : RunMode.Node) : RunMode.Default, from ?? only,
        parse.GetValue(deviceOption)!, parse.GetValue(waitOption), Parallel: parse.GetValue(parallelOption))
    {
        Sweeps = parse.GetValue(sweepOption) ?? [], Executor = parse.GetValue(executorOption)!, JobOf = jobOf, TrialOf = parse.GetValue(trialOfOption),
        Slurm = new Fer.Flow.Cluster.SlurmResources
        {
            Partition = parse.GetValue(partitionOption), Gres = parse.GetValue(gresOption), Time = parse.GetValue(timeOption),
            Cpus = parse.GetValue(cpusOption), Extra = parse.GetValue(slurmArgOption) ?? [],
        },
    };
    return await FlowCommand.RunAsync(request, Console.Error, ct);
});

var stages = new Command("stages", "List a flow's stages with their fingerprints and cache status");
stages.Arguments.Add(flowArgument);
stages.Options.Add(artifactsOption);
stages.Options.Add(setOption);
var stagesJson = new Option<bool>("--json") { Description = "The list as JSON" };
stages.Options.Add(stagesJson);
stages.SetAction(parse => FlowCommand.ListStages(
    new FlowRequest(parse.GetValue(flowArgument)!, parse.GetValue(artifactsOption)!, parse.GetValue(setOption) ?? []), Console.Out, Console.Error, parse.GetValue(stagesJson)));

// Standard error escapes control characters: names from data or the artifacts folder never drive the terminal
// (FER_TRACE=1 keeps stack traces as they are).
if (Environment.GetEnvironmentVariable("FER_TRACE") != "1")
    Console.SetError(new SafeErrorWriter(Console.Error) { NewLine = "\n" });

var root = new RootCommand("fer: facial-expression recognition experiments as cached data-flow pipelines");
root.Subcommands.Add(run);
root.Subcommands.Add(stages);
root.Subcommands.Add(SynthCommand.Create());
root.Subcommands.Add(AuditCommands.Runs(artifactsOption));
root.Subcommands.Add(AuditCommands.Logs(artifactsOption));
root.Subcommands.Add(PredictCommand.Create(artifactsOption, deviceOption));
root.Subcommands.Add(ExportCommand.Create(artifactsOption));
root.Subcommands.Add(CompareCommand.Create(artifactsOption));
root.Subcommands.Add(NewCommand.Create());
root.Subcommands.Add(GcCommand.Create(artifactsOption));
// No response files: an argument beginning with @ (a --where expression on @l, a file named @x) is taken as it is.
var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
// Bad arguments (an unknown option, --wait nan, --count abc) are a user error: one line each and exit 2.
if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
{
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {error.Message}");
    return ExitCodes.BadInput;
}

// Ctrl-C (SIGINT) and SIGTERM cancel the run: it stops at the next batch, caches nothing partial, keeps the last
// training checkpoint, is recorded as cancelled and exits 130 (SIGINT) or 143 (SIGTERM). A second signal kills.
using var cancel = new CancellationTokenSource();
int signalExit = 0;
void OnSignal(PosixSignalContext context)
{
    if (Interlocked.CompareExchange(ref signalExit, context.Signal == PosixSignal.SIGTERM ? ExitCodes.Terminated : ExitCodes.Cancelled, 0) != 0)
        return; // the second signal: the default action (the process ends)
    context.Cancel = true;
    Console.Error.WriteLine($"{(context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "Ctrl-C")}: stopping at the next batch (again to kill)");
    cancel.Cancel();
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

int code;
try
{
    code = await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false }, cancel.Token);
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    code = ExitCodes.Cancelled;
}
catch (Exception e)
{
    // A bug, not a user error: one line here; the trace only with FER_TRACE=1 (a run writes it to its log.clef).
    Console.Error.WriteLine($"error: {e.GetType().Name}: {e.Message}");
    if (Environment.GetEnvironmentVariable("FER_TRACE") == "1") Console.Error.WriteLine(e);
    else Console.Error.WriteLine("(set FER_TRACE=1 for the stack trace)");
    return ExitCodes.Failed;
}
// A signal that cancelled the command: 130 for Ctrl-C, 143 for SIGTERM (128 + signal number, as shells report).
return code == ExitCodes.Cancelled && signalExit != 0 ? signalExit : code;
