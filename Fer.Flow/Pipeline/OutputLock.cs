using System.Security.Cryptography;
using System.Text;

namespace Fer.Flow.Pipeline;

/// <summary>
/// One writer per output folder (`fer predict --out`, `fer export --out`): an flock on a file named after the folder's
/// full path in the system's temporary folder, so it needs nothing inside the output (export's must be new or empty)
/// and leaves nothing in the user's folders. The OS releases it when the process dies, so a kill -9 leaves no stale
/// lock. A second command for the same folder does not wait: it stops at once with <see cref="ArtifactsBusyException"/>
/// (exit code 3) naming the holder, so two commands never mix their files.
/// </summary>
public sealed class OutputLock : IDisposable
{
    private readonly FileStream _stream;
    private OutputLock(FileStream stream) => _stream = stream;

    /// <summary>The lock file for an output folder (the same for every spelling of its path).</summary>
    public static string PathFor(string outDir)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(full)))[..32];
        return Path.Combine(Path.GetTempPath(), "fer-locks", $"out-{key}.lock");
    }

    public static OutputLock Take(string outDir, string command)
    {
        var path = PathFor(outDir);
        var holderPath = path + ".holder";
        try { Directory.CreateDirectory(Path.GetDirectoryName(path)!); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArtifactsUnusableException($"cannot create the lock folder {Path.GetDirectoryName(path)}: {e.Message}");
        }
        FileStream stream;
        try { stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); } // flock(LOCK_EX)
        catch (IOException e) when (ArtifactsLock.IsContention(e))
        {
            string who;
            try { who = File.Exists(holderPath) ? File.ReadAllText(holderPath).Trim() : "another command"; }
            catch (Exception r) when (r is IOException or UnauthorizedAccessException) { who = "another command"; }
            throw new ArtifactsBusyException($"{Path.GetFullPath(outDir)} is being written by {OneLine(who)}; wait for it to finish or give another --out");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArtifactsUnusableException($"cannot lock {Path.GetFullPath(outDir)} for writing ({path}): {e.Message}");
        }
        try { File.WriteAllText(holderPath, $"{command} (pid {Environment.ProcessId}, since {DateTime.UtcNow:O})"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the lock holds; only its description is missing
        return new OutputLock(stream);
    }

    /// <summary>A holder description read from disk is data, not trusted text: at most one short line.</summary>
    private static string OneLine(string who) => Fer.Core.Storage.SafeText.Terminal(who.Length > 200 ? who[..200] : who);

    public void Dispose() => _stream.Dispose();
}
