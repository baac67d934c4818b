using System.CommandLine;
using Fer.Core.Ensemble;
using Fer.Core.Photos;
using Fer.Flow.Pipeline;
using TorchSharp;

namespace Fer.Flow.Cli;

/// <summary>`fer export`: a finished run's ensemble as PyTorch state_dicts with model.json.</summary>
public static class ExportCommand
{
    /// <summary>", flip TTA" or ", ten-crop TTA" after a run's members in one-line summaries; nothing without TTA.</summary>
    public static string TtaNote(TestTimeAugmentation tta) => tta switch
    {
        TestTimeAugmentation.None => "",
        TestTimeAugmentation.Flip => ", flip TTA",
        _ => ", ten-crop TTA",
    };

    public static Command Create(Option<string> artifactsOption)
    {
        var run = new Option<string?>("--run") { Description = "Run id (or unique prefix); default: the latest finished run" };
        var output = new Option<string>("--out") { Description = "New or empty folder for the export", Required = true };
        var command = new Command("export", "Write a trained run's ensemble as PyTorch state_dict files with model.json and SHA-256 sums");
        command.Options.Add(artifactsOption);
        command.Options.Add(run);
        command.Options.Add(output);
        command.SetAction(parse => Run(parse.GetValue(artifactsOption)!, parse.GetValue(run), parse.GetValue(output)!, Console.Out, Console.Error));
        return command;
    }

    public static int Run(string artifacts, string? run, string outDir, TextWriter stdout, TextWriter stderr)
    {
        RunEnsemble ensemble;
        try { ensemble = RunEnsemble.Load(artifacts, run, torch.CPU); }
        catch (FlowDefinitionException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        OutputLock? outLock = null;
        try
        {
            // One writer per export folder: a second fer export into it stops here (exit 3), before it checks the folder.
            outLock = OutputLock.Take(outDir, "fer export");
            var members = ensemble.Members.Select(m => new ExportMember(m.Trained.Member, m.Trained.Model, m.Trained.Family, m.Trained.Hyperparameters,
                m.Model, m.Weight)).ToList();
            var result = ModelExport.Write(outDir, ensemble.Run.RunId, members, ensemble.ClassNames, ensemble.Side, ensemble.Tta);
            stdout.WriteLine($"exported run {ensemble.Run.RunId} ({members.Count} members{TtaNote(ensemble.Tta)}) to {result.Dir}");
            foreach (var f in result.Files) stdout.WriteLine($"  {f.Sha256}  {f.Name} ({f.Bytes:N0} bytes)");
            return ExitCodes.Ok;
        }
        catch (PhotoInputException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        catch (ArtifactsBusyException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Busy; }
        catch (ArtifactsUnusableException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot write the export to {outDir}: {e.Message}");
            return ExitCodes.BadInput;
        }
        finally
        {
            outLock?.Dispose();
            foreach (var m in ensemble.Members) m.Model.Dispose();
        }
    }
}
