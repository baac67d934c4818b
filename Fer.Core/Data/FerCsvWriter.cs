using System.Text;

namespace Fer.Core.Data;

/// <summary>Writes face sets in the FER2013 CSV formats (to a temporary name, renamed into place).</summary>
public static class FerCsvWriter
{
    public static void WriteKaggle(string path, FaceSet faces) =>
        Write(path, "emotion,pixels,Usage", faces, i => $"{RequireLabel(faces, i)},{Pixels(faces, i)},{faces.Usage[i] switch
        {
            FaceUsage.PublicTest => "PublicTest",
            FaceUsage.PrivateTest => "PrivateTest",
            _ => "Training",
        }}");

    public static void WriteCourseTrain(string path, FaceSet faces) =>
        Write(path, "label,feature", faces, i => $"{RequireLabel(faces, i)},{Pixels(faces, i)}");

    public static void WriteCourseTest(string path, FaceSet faces) =>
        Write(path, "id,feature", faces, i => $"{faces.Ids[i]},{Pixels(faces, i)}");

    private static int RequireLabel(FaceSet faces, int i) => faces.Labels[i] != FaceSet.Unlabeled
        ? faces.Labels[i] : throw new InvalidOperationException($"row {i} (id {faces.Ids[i]}) has no label");

    private static string Pixels(FaceSet faces, int i)
    {
        var image = faces.Image(i);
        var text = new StringBuilder(image.Length * 4);
        for (int k = 0; k < image.Length; k++)
        {
            if (k > 0) text.Append(' ');
            text.Append(image[k]);
        }
        return text.ToString();
    }

    private static void Write(string path, string header, FaceSet faces, Func<int, string> row)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var writer = new StreamWriter(tmp, false, new UTF8Encoding(false), 1 << 20) { NewLine = "\n" })
            {
                writer.WriteLine(header);
                for (int i = 0; i < faces.Count; i++) writer.WriteLine(row(i));
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }
}
