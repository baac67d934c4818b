namespace Fer.Core.Photos;

public enum PhotoInputKind { Image, Video }

/// <summary>One file `fer predict` will read.</summary>
public sealed record PhotoInput(string Path, PhotoInputKind Kind);

/// <summary>
/// Expands the PATH arguments: a file is taken as given (a video by its extension, anything else as an image, so a
/// file that is not one is reported), a folder recursively (images and videos by extension, in ordinal order; other
/// files are ignored). Problems (a missing path, an unreadable folder, something that is not a regular file) are
/// reported through <c>onError</c> and the rest goes on.
/// </summary>
public static class PhotoInputs
{
    public static readonly IReadOnlySet<string> VideoExtensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv" };

    public static List<PhotoInput> Expand(IEnumerable<string> paths, Action<PhotoInputException> onError)
    {
        var result = new List<PhotoInput>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path)) Walk(path, result, onError); // a folder given by a link is followed; links inside it are not
            else if (File.Exists(path))
            {
                var info = new FileInfo(path);
                if (info.LinkTarget is not null || (info.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) != 0)
                    onError(new PhotoInputException(path, "not a regular file"));
                else result.Add(new PhotoInput(path, KindOf(path)));
            }
            else if (Path.Exists(path)) onError(new PhotoInputException(path, "not a regular file or folder"));
            else onError(new PhotoInputException(path, "no such file or folder"));
        }
        return result;
    }

    public static PhotoInputKind KindOf(string path) =>
        VideoExtensions.Contains(Path.GetExtension(path)) ? PhotoInputKind.Video : PhotoInputKind.Image;

    private static void Walk(string dir, List<PhotoInput> into, Action<PhotoInputException> onError)
    {
        string[] files, dirs;
        try
        {
            files = Directory.GetFiles(dir);
            dirs = Directory.GetDirectories(dir);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            onError(new PhotoInputException(dir, $"cannot read the folder ({e.GetType().Name}: {e.Message})", e));
            return;
        }
        foreach (var f in files.Order(StringComparer.Ordinal))
        {
            var ext = Path.GetExtension(f);
            bool image = ImageLoader.Extensions.Contains(ext), video = VideoExtensions.Contains(ext);
            if (!image && !video) continue;
            var info = new FileInfo(f);
            if (info.LinkTarget is not null || (info.Attributes & FileAttributes.ReparsePoint) != 0) { onError(new PhotoInputException(f, "not a regular file (a link); skipped")); continue; }
            into.Add(new PhotoInput(f, video ? PhotoInputKind.Video : PhotoInputKind.Image));
        }
        foreach (var d in dirs.Order(StringComparer.Ordinal))
        {
            if (new DirectoryInfo(d).LinkTarget is not null) continue; // no following links out of the tree (nor loops)
            Walk(d, into, onError);
        }
    }
}
