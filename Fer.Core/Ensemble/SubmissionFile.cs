using System.Globalization;
using System.Text;

namespace Fer.Core.Ensemble;

/// <summary>The course's submission format: "id,label", one row per test image.</summary>
public static class SubmissionFile
{
    public static void Write(string path, IReadOnlyList<long> ids, IReadOnlyList<int> labels)
    {
        if (ids.Count != labels.Count) throw new ArgumentException($"{ids.Count} ids but {labels.Count} labels");
        var text = new StringBuilder("id,label\n");
        for (int i = 0; i < ids.Count; i++)
            text.Append(ids[i].ToString(CultureInfo.InvariantCulture)).Append(',').Append(labels[i].ToString(CultureInfo.InvariantCulture)).Append('\n');
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(tmp, text.ToString(), new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }
}
