using System.Runtime.InteropServices;

namespace Fer.Core.Storage;

public enum FileKind { Missing, Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, SymlinkLoop, Other }

/// <summary>
/// What a path is, and the identity of its content as far as the file system knows it: device, inode, size,
/// modification and status-change times (ctime: set by the kernel on every write, and not restorable by touch).
/// On Linux from statx(2); elsewhere from FileInfo (no inode, no ctime).
/// </summary>
public sealed record FileStat(FileKind Kind, ulong Device, ulong Inode, long Size, long MtimeNs, long CtimeNs)
{
    /// <summary>Follows symbolic links (a loop is <see cref="FileKind.SymlinkLoop"/>); never opens the file.</summary>
    public static FileStat Of(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            try { return Statx(path); }
            catch (EntryPointNotFoundException) { }
            catch (DllNotFoundException) { }
        }
        return Portable(path);
    }

    /// <summary>Throws <see cref="IOException"/> naming the path and what it is unless it is a regular file.</summary>
    public static FileStat RequireRegular(string path, string what = "file")
    {
        var stat = Of(path);
        if (stat.Kind == FileKind.Regular) return stat;
        throw new NotARegularFileException(path, stat.Kind, what);
    }

    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "file not found",
        FileKind.Directory => "is a directory, not a file",
        FileKind.Fifo => "is a FIFO (named pipe), not a regular file",
        FileKind.CharacterDevice => "is a character device, not a regular file",
        FileKind.BlockDevice => "is a block device, not a regular file",
        FileKind.Socket => "is a socket, not a regular file",
        FileKind.SymlinkLoop => "is a symbolic link loop",
        _ => "is not a regular file",
    };

    private static FileStat Portable(string path)
    {
        if (Directory.Exists(path)) return new FileStat(FileKind.Directory, 0, 0, 0, 0, 0);
        var info = new FileInfo(path);
        if (!info.Exists) return new FileStat(FileKind.Missing, 0, 0, 0, 0, 0);
        return new FileStat(FileKind.Regular, 0, 0, info.Length, info.LastWriteTimeUtc.Ticks * 100, 0);
    }

    private const int AtFdCwd = -100;
    private const uint StatxBasicStats = 0x7ff;
    private const int Enoent = 2, Enotdir = 20, Eloop = 40;

    [DllImport("libc", SetLastError = true, EntryPoint = "statx")]
    private static extern unsafe int NativeStatx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    private static unsafe FileStat Statx(string path)
    {
        var name = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        var buffer = stackalloc byte[256];
        int rc;
        fixed (byte* p = name) rc = NativeStatx(AtFdCwd, p, 0, StatxBasicStats, buffer);
        if (rc != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno switch
            {
                Enoent or Enotdir => new FileStat(FileKind.Missing, 0, 0, 0, 0, 0),
                Eloop => new FileStat(FileKind.SymlinkLoop, 0, 0, 0, 0, 0),
                _ => throw new IOException($"{path}: cannot be examined (errno {errno})"),
            };
        }
        // struct statx (linux/stat.h), the same on every architecture.
        ushort mode = *(ushort*)(buffer + 28);
        ulong inode = *(ulong*)(buffer + 32);
        long size = *(long*)(buffer + 40);
        static long Time(byte* at) => *(long*)at * 1_000_000_000L + *(uint*)(at + 8);
        long ctime = Time(buffer + 96), mtime = Time(buffer + 112);
        ulong device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Other,
        };
        return new FileStat(kind, device, inode, size, mtime, ctime);
    }
}

/// <summary>A path that is not a regular file (missing, a directory, a FIFO, a device, a socket or a link loop).</summary>
public sealed class NotARegularFileException(string path, FileKind kind, string what = "file")
    : IOException($"{path}: {FileStat.Describe(kind)}")
{
    public string Path { get; } = path;
    public FileKind Kind { get; } = kind;
    public string What { get; } = what;
}
