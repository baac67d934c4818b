using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fer.Core.Photos;

/// <summary>faces.csv and faces.json: one row per face, columns file,frame,x,y,w,h,label,confidence and a probability per class.</summary>
public static class PhotoCsv
{
    public const string CsvName = "faces.csv", JsonName = "faces.json";

    /// <summary>A text cell (file names, labels): formula-neutral and quoted where needed (see <see cref="Storage.SafeText.CsvField"/>).</summary>
    public static string Escape(string field) => Storage.SafeText.CsvField(field);

    public static string FormatCsv(IReadOnlyList<FaceRow> rows, IReadOnlyList<string> classNames)
    {
        var csv = new StringBuilder("file,frame,x,y,w,h,label,confidence");
        foreach (var name in classNames) csv.Append(',').Append(Escape(name));
        csv.Append('\n');
        var inv = CultureInfo.InvariantCulture;
        foreach (var r in rows)
        {
            csv.Append(Escape(r.File)).Append(',').Append(r.Frame?.ToString(inv) ?? "").Append(',')
               .Append(r.Box.X.ToString(inv)).Append(',').Append(r.Box.Y.ToString(inv)).Append(',')
               .Append(r.Box.W.ToString(inv)).Append(',').Append(r.Box.H.ToString(inv)).Append(',')
               .Append(Escape(r.LabelName)).Append(',').Append(r.Confidence.ToString("0.######", inv));
            foreach (var p in r.Probabilities) csv.Append(',').Append(p.ToString("0.######", inv));
            csv.Append('\n');
        }
        return csv.ToString();
    }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>faces.json: the run and classes, every face (the CSV's columns, probabilities by class name), every image and video, and the inputs that failed.</summary>
    public static string FormatJson(PhotoPredictionResult result, IReadOnlyList<string> classNames, object run)
    {
        var doc = new
        {
            Run = run,
            Classes = classNames,
            Faces = result.Faces.Select(r => new
            {
                r.File, r.Frame, Seconds = r.Seconds is { } s ? Math.Round(s, 4) : (double?)null, r.Box.X, r.Box.Y, W = r.Box.W, H = r.Box.H, Label = r.LabelName,
                Confidence = Math.Round(r.Confidence, 6),
                DetectorScore = r.Box.Score is { } score ? Math.Round(score, 4) : (double?)null,
                Landmarks = r.Box.Landmarks is { } l ? new
                {
                    RightEye = Point(l.RightEye), LeftEye = Point(l.LeftEye), Nose = Point(l.Nose), MouthRight = Point(l.MouthRight), MouthLeft = Point(l.MouthLeft),
                    EyeAngle = Math.Round(l.EyeAngleDegrees, 2),
                } : null,
                Probabilities = classNames.Select((n, k) => (n, k)).ToDictionary(x => x.n, x => Math.Round(r.Probabilities[x.k], 6)),
            }),
            Images = result.Images,
            Videos = result.Videos,
            Errors = result.Errors.Select(e => new { File = e.Path, e.Problem }),
        };
        return JsonSerializer.Serialize(doc, Json);
    }

    private static double[] Point(LandmarkPoint p) => [Math.Round(p.X, 1), Math.Round(p.Y, 1)];

    public static void WriteAtomically(string path, string text)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, full, overwrite: true);
        }
        finally { if (File.Exists(temp)) File.Delete(temp); }
    }
}
