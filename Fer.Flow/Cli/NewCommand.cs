using System.CommandLine;
using Fer.Flow.Scripting;

namespace Fer.Flow.Cli;

/// <summary>`fer new FLOW.fsx`: writes a starter flow (it loads the Fer.fsx that ships with fer).</summary>
public static class NewCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("flow") { Description = "The flow script to write, e.g. myflow.fsx" };
        var command = new Command("new", "Write a starter flow script");
        command.Arguments.Add(file);
        command.SetAction(parse => Run(parse.GetValue(file)!, Console.Out, Console.Error));
        return command;
    }

    public static int Run(string path, TextWriter stdout, TextWriter stderr)
    {
        if (!path.EndsWith(".fsx", StringComparison.OrdinalIgnoreCase)) { stderr.WriteLine($"error: {path}: a flow script ends in .fsx"); return ExitCodes.BadInput; }
        var full = Path.GetFullPath(path);
        if (File.Exists(full) || Directory.Exists(full)) { stderr.WriteLine($"error: {path}: already exists; choose another name"); return ExitCodes.BadInput; }
        var name = Path.GetFileNameWithoutExtension(full);
        if (name.Length == 0 || name.Any(c => c is '"' or '\\' || char.IsControl(c))) { stderr.WriteLine($"error: {path}: the flow name cannot hold quotes, backslashes or control characters"); return ExitCodes.BadInput; }
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            var tmp = full + $".{Guid.NewGuid():N}.tmp";
            try
            {
                File.WriteAllText(tmp, FlowVocabulary.Starter(name));
                File.Move(tmp, full, overwrite: false);
            }
            finally { File.Delete(tmp); }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot write {full}: {e.Message}");
            return ExitCodes.BadInput;
        }
        stdout.WriteLine($"wrote {full}; run it with: fer run {path}");
        return ExitCodes.Ok;
    }
}
