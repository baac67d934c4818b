namespace Fer.Flow.Tests.Hardening;

/// <summary>
/// A real small file system for full-disk tests: a tmpfs of a few hundred kilobytes mounted on a temporary folder, so
/// writes fail with ENOSPC as on a full disk. Needs root and a kernel that lets it mount (CI runs as root); elsewhere
/// the test skips, saying why. Unmounted (lazily, if busy) when disposed.
/// </summary>
public sealed class SmallTmpfs : IDisposable
{
    public string Path { get; }

    public SmallTmpfs(int kilobytes)
    {
        Skip.If(!OperatingSystem.IsLinux() || Environment.UserName != "root", "a tmpfs of limited size needs root on Linux to mount");
        Path = Directory.CreateTempSubdirectory("fer-full-").FullName;
        var (code, output) = Shell.Run("mount", "-t", "tmpfs", "-o", $"size={kilobytes}k,mode=0777", "tmpfs", Path);
        if (code != 0)
        {
            Directory.Delete(Path);
            Skip.If(true, $"cannot mount a tmpfs here: {output.Trim()}");
        }
    }

    /// <summary>Writes a filler file until the file system is full; what is left is less than one 4 kB block.</summary>
    public void Fill()
    {
        using var stream = new FileStream(System.IO.Path.Combine(Path, "filler"), FileMode.Create, FileAccess.Write);
        var block = new byte[4096];
        try { while (true) { stream.Write(block); stream.Flush(); } }
        catch (IOException) { } // ENOSPC: full
    }

    /// <summary>Everything in the file system but the filler, as relative paths (what a failed command left behind).</summary>
    public IReadOnlyList<string> Leftovers() =>
        [.. Directory.EnumerateFileSystemEntries(Path, "*", SearchOption.AllDirectories)
            .Select(p => System.IO.Path.GetRelativePath(Path, p)).Where(p => p != "filler").Order(StringComparer.Ordinal)];

    public void Dispose()
    {
        if (Shell.Run("umount", Path).Code != 0) Shell.Run("umount", "-l", Path);
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
