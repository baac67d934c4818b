using Fer.Core.Data;
using Fer.Core.Storage;
using Fer.Core.Tests.Training;

namespace Fer.Core.Tests.Hardening;

/// <summary>Rule 1 (only regular files are read) and rule 4 (a file's identity survives touch -d).</summary>
public class FileStatTests
{
    [Fact]
    public void EachKindOfPathIsToldApartWithoutOpeningIt()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "a.csv");
        File.WriteAllText(file, "x");
        var fifo = Path.Combine(dir.Path, "f.csv");
        Shell.Run("mkfifo", fifo);
        var loop1 = Path.Combine(dir.Path, "l1.csv");
        var loop2 = Path.Combine(dir.Path, "l2.csv");
        File.CreateSymbolicLink(loop1, loop2);
        File.CreateSymbolicLink(loop2, loop1);
        var link = Path.Combine(dir.Path, "link.csv");
        File.CreateSymbolicLink(link, file);

        Assert.Equal(FileKind.Regular, FileStat.Of(file).Kind);
        Assert.Equal(FileKind.Regular, FileStat.Of(link).Kind); // links to regular files are followed
        Assert.Equal(FileKind.Directory, FileStat.Of(dir.Path).Kind);
        Assert.Equal(FileKind.Missing, FileStat.Of(Path.Combine(dir.Path, "none.csv")).Kind);
        Assert.Equal(FileKind.Missing, FileStat.Of(Path.Combine(file, "below-a-file")).Kind);
        Assert.Equal(FileKind.Fifo, Shell.WithinSeconds(10, () => FileStat.Of(fifo)).Kind);
        Assert.Equal(FileKind.CharacterDevice, FileStat.Of("/dev/zero").Kind);
        Assert.Equal(FileKind.SymlinkLoop, FileStat.Of(loop1).Kind);
        Assert.Equal(1, FileStat.Of(file).Size);
    }

    [Fact]
    public void RewritingAFileAndRestoringItsMtimeStillChangesItsIdentity()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "train.csv");
        File.WriteAllText(file, "label,feature\n0,1 2 3 4\n");
        var reference = Path.Combine(dir.Path, "reference");
        File.WriteAllText(reference, "");
        Shell.Run("touch", "-r", file, reference);
        var before = FileStat.Of(file);
        Thread.Sleep(20);
        File.WriteAllText(file, "label,feature\n1,1 2 3 4\n"); // same size, one byte differs
        Shell.Run("touch", "-r", reference, file);             // the mtime put back to the nanosecond
        var after = FileStat.Of(file);
        Assert.Equal(before.Size, after.Size);
        Assert.Equal(before.MtimeNs, after.MtimeNs);
        Assert.NotEqual(before.CtimeNs, after.CtimeNs);
        Assert.NotEqual(before, after);
        Assert.NotEqual(0UL, after.Inode);
    }

    [Theory]
    [InlineData("fifo", "is a FIFO (named pipe)")]
    [InlineData("/dev/zero", "is a character device")]
    [InlineData("loop", "is a symbolic link loop")]
    public void TheReaderRefusesWhatIsNotARegularFileAtOnce(string what, string problem)
    {
        using var dir = new TempDir();
        var path = what;
        if (what == "fifo") { path = Path.Combine(dir.Path, "f.csv"); Shell.Run("mkfifo", path); }
        if (what == "loop")
        {
            path = Path.Combine(dir.Path, "l1.csv");
            File.CreateSymbolicLink(path, Path.Combine(dir.Path, "l2.csv"));
            File.CreateSymbolicLink(Path.Combine(dir.Path, "l2.csv"), path);
        }
        var e = Shell.WithinSeconds(20, () => Assert.Throws<FerDataException>(() => FerCsvReader.Read(path)));
        Assert.Equal(path, e.File);
        Assert.Equal(0, e.Line);
        Assert.Contains(problem, e.Problem);
    }
}
