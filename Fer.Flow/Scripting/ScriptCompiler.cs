using System.Reflection;
using FSharp.Compiler.CodeAnalysis;
using FSharp.Compiler.Diagnostics;
using Fer.Core.Storage;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;
using Microsoft.FSharp.Control;
using Microsoft.FSharp.Core;

namespace Fer.Flow.Scripting;

/// <summary>
/// Compiles a flow script (and the files it #loads) into an assembly once and reuses it, as FAKE does: the
/// assembly is cached under a key made of the script's content hash, the files it loads, and the identity of
/// the Fer and F# compiler assemblies, so editing the script or rebuilding Fer compiles it again. Evaluating a
/// cached script costs loading one small assembly instead of starting F# Interactive.
/// </summary>
public static class ScriptCompiler
{
    /// <summary>Where compiled scripts are kept: $FER_SCRIPT_CACHE, else $XDG_CACHE_HOME/fer/scripts, else ~/.cache/fer/scripts.</summary>
    public static string CacheDir
    {
        get
        {
            if (Environment.GetEnvironmentVariable("FER_SCRIPT_CACHE") is { Length: > 0 } dir) return dir;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = xdg is { Length: > 0 } ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "fer", "scripts");
        }
    }

    private static readonly Assembly[] Referenced =
        [typeof(FlowScript).Assembly, typeof(Fer.Core.Data.FaceSet).Assembly, typeof(TorchSharp.torch).Assembly, typeof(FSharpFunc<,>).Assembly];

    /// <summary>The cache key: the script's hash and the exact Fer, TorchSharp, FSharp.Core and compiler builds.</summary>
    public static string Key(string scriptHash) => Hashing.Sha256Hex(scriptHash + "|" + string.Join("|",
        Referenced.Append(typeof(FSharpChecker).Assembly).Select(a => a.ManifestModule.ModuleVersionId.ToString())))[..32];

    /// <summary>The script's compiled assembly: from the cache, or compiled now (to a temporary name, then renamed).</summary>
    public static (Assembly Assembly, bool Cached) LoadOrCompile(string scriptPath, string scriptHash)
    {
        var dir = CacheDir;
        if (File.Exists(dir) || (FileStat.Of(dir).Kind is not (FileKind.Missing or FileKind.Directory)))
            throw new FlowDefinitionException($"{(Environment.GetEnvironmentVariable("FER_SCRIPT_CACHE") is { Length: > 0 } ? "FER_SCRIPT_CACHE=" : "script cache ")}{dir}: "
                + "is not a folder; give a folder for compiled scripts (or FER_SCRIPT_CACHE=off to interpret them)");
        var dll = Path.Combine(dir, Key(scriptHash) + ".dll");
        if (File.Exists(dll))
        {
            try { return (Assembly.LoadFile(dll), true); }
            catch (BadImageFormatException) { File.Delete(dll); } // a damaged cache entry is compiled again
        }
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlowDefinitionException($"cannot create the script cache {dir}: {e.Message} (set FER_SCRIPT_CACHE to a folder you can write, or to off to interpret scripts)");
        }
        var temp = Path.Combine(dir, $".{Path.GetFileNameWithoutExtension(dll)}-{Guid.NewGuid():N}.dll");
        try
        {
            Compile(scriptPath, temp);
            File.Move(temp, dll, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
            var pdb = Path.ChangeExtension(temp, ".pdb");
            if (File.Exists(pdb)) File.Delete(pdb);
        }
        return (Assembly.LoadFile(dll), false);
    }

    private static void Compile(string scriptPath, string output)
    {
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var frameworkReferences = Directory.EnumerateFiles(runtime, "*.dll")
            .Where(f => Path.GetFileName(f) is var n && (n.StartsWith("System.", StringComparison.Ordinal) || n is "mscorlib.dll" or "netstandard.dll" or "Microsoft.CSharp.dll"))
            .Where(IsManaged);
        var argv = new List<string>
        {
            "fsc.exe", "-o:" + output, "--target:exe", "--noframework", "--nologo", "--optimize+", "--debug-", "--nowarn:FS0988",
            "--targetprofile:netcore", "--nowin32manifest",
        };
        argv.AddRange(frameworkReferences.Select(f => "-r:" + f));
        argv.AddRange(Referenced.Select(a => "-r:" + a.Location));
        if (FlowVocabulary.IncludeDirFor(scriptPath) is { } include) argv.Add("-I:" + include);
        argv.Add(scriptPath);
        var checker = FSharpChecker.Create(null, null, null, null, null, null, null, null, null, null, null, null, null, null);
        var (diagnostics, failure) = FSharpAsync.RunSynchronously(checker.Compile([.. argv], null), null, null).ToValueTuple();
        var errors = diagnostics.Where(d => d.Severity.IsError).ToList();
        if (errors.Count > 0)
            throw new FlowDefinitionException(string.Join(Environment.NewLine, errors.Select(Describe)));
        if (failure is { Value: { } ex })
            throw new FlowDefinitionException($"{scriptPath}: the F# compiler failed: {ex.Message}");
        if (!File.Exists(output))
            throw new FlowDefinitionException($"{scriptPath}: the F# compiler wrote no assembly");
    }

    private static bool IsManaged(string path)
    {
        try { AssemblyName.GetAssemblyName(path); return true; }
        catch (BadImageFormatException) { return false; }
    }

    internal static string Describe(FSharpDiagnostic d) =>
        $"{d.Range.FileName}({d.Range.StartLine},{d.Range.StartColumn + 1}): error FS{d.ErrorNumber:0000}: {d.Message}";
}
