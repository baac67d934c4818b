using System.CommandLine;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

Fer.Core.TorchRuntime.Configure();

var artifactsOption = new Option<string>("--artifacts") { Description = "Artifacts folder (cache and runs)", DefaultValueFactory = _ => "artifacts" };
var setOption = new Option<string[]>("--set") { Description = "Set a flow parameter or stage setting: name=value, stage.name=value, train.member.name=value", AllowMultipleArgumentsPerToken = false };
var fromOption = new Option<string?>("--from") { Description = "Recompute this stage and every stage after it" };
var onlyOption = new Option<string?>("--only") { Description = "Run this stage alone from cached inputs" };
var deviceOption = new Option<string>("--device") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
var waitOption = new Option<double>("--wait") { Description = "Seconds to wait for another run holding the artifacts folder", DefaultValueFactory = _ => 0 };
var parallelOption = new Option<int>("--parallel") { Description = "How many stages (e.g. ensemble members) compute at once", DefaultValueFactory = _ => 1 };
var flowArgument = new Argument<string>("flow") { Description = "Flow script, e.g. flows/quickstart.fsx" };

var run = new Command("run", "Run a flow: reuse every valid cached stage, compute the rest");
run.Arguments.Add(flowArgument);
foreach (var o in new Option[] { artifactsOption, setOption, fromOption, onlyOption, deviceOption, waitOption, parallelOption }) run.Options.Add(o);
run.SetAction(async (parse, ct) =>
{
    var from = parse.GetValue(fromOption);
    var only = parse.GetValue(onlyOption);
    if (from is not null && only is not null)
    {
        Console.Error.WriteLine("error: --from and --only cannot be combined");
        return ExitCodes.BadInput;
    }
    var request = new FlowRequest(parse.GetValue(flowArgument)!, parse.GetValue(artifactsOption)!, parse.GetValue(setOption) ?? [],
        from is not null ? RunMode.From : only is not null ? RunMode.Only : RunMode.Default, from ?? only,
        parse.GetValue(deviceOption)!, parse.GetValue(waitOption), Parallel: parse.GetValue(parallelOption));
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
return await root.Parse(args).InvokeAsync();
