using System.Threading.Tasks.Dataflow;

namespace Fer.Core.Data;

public enum FerCsvFormat { Kaggle, CourseTrain, CourseTest }

public enum OnBadRow { Fail, Skip }

/// <param name="ClassNames">Label names in label order; null: the 7 FER2013 emotions.</param>
/// <param name="MaxDegreeOfParallelism">Parser threads; 0: one per core.</param>
public sealed record FerCsvReadOptions(OnBadRow OnBadRow = OnBadRow.Fail, IReadOnlyList<string>? ClassNames = null, int MaxDegreeOfParallelism = 0);

public sealed record SkippedRow(long Line, string Problem);

public sealed record FerCsvReadResult(string Path, FerCsvFormat Format, FaceSet Faces, IReadOnlyList<SkippedRow> Skipped, long Bytes);

/// <summary>
/// Reads FER2013 CSV files: Kaggle's fer2013.csv (emotion,pixels,Usage) and the course's train.csv
/// (label,feature) and test.csv (id,feature), detected by header. Tolerates CRLF, a UTF-8 BOM, a missing final
/// newline, quoted fields and trailing blank lines. Strict by default: the first bad row stops the read with
/// the file, line and problem; OnBadRow.Skip skips bad rows and returns them.
/// </summary>
public static class FerCsvReader
{
    /// <summary>Lines per parse job: big enough to amortise scheduling, small enough to balance two cores.</summary>
    private const int LinesPerChunk = 1024;

    public static FerCsvFormat DetectFormat(string headerLine) =>
        TryDetect(headerLine) ?? throw new FormatException(UnknownHeader(headerLine));

    private static FerCsvFormat? TryDetect(string headerLine)
    {
        var names = headerLine.Trim().Split(',').Select(f => f.Trim().Trim('"').Trim().ToLowerInvariant()).ToArray();
        return names switch
        {
            ["emotion", "pixels", "usage"] => FerCsvFormat.Kaggle,
            ["label", "feature"] => FerCsvFormat.CourseTrain,
            ["id", "feature"] => FerCsvFormat.CourseTest,
            _ => null,
        };
    }

    private static string UnknownHeader(string header) =>
        $"unknown header '{(header.Length > 60 ? header[..60] + "..." : header)}'; expected emotion,pixels,Usage (Kaggle fer2013.csv), " +
        "label,feature (course train.csv) or id,feature (course test.csv)";

    public static FerCsvReadResult Read(string path, FerCsvReadOptions? options = null, CancellationToken ct = default)
    {
        options ??= new FerCsvReadOptions();
        var classes = options.ClassNames ?? FaceSet.Fer2013Classes;
        if (Directory.Exists(path)) throw new FerDataException(path, 0, "is a directory, not a CSV file");
        if (!File.Exists(path)) throw new FerDataException(path, 0, "file not found");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new FerDataException(path, 0, $"cannot be read: {e.Message}"); }
        catch (UnauthorizedAccessException e) { throw new FerDataException(path, 0, $"cannot be read: {e.Message}"); }
        if (bytes.Length == 0) throw new FerDataException(path, 0, "file is empty");
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (bytes.AsSpan(0, Math.Min(bytes.Length, 4096)).IndexOf((byte)0) >= 0)
            throw new FerDataException(path, 1, "the file contains NUL bytes: it is binary, not a CSV file");

        // Line starts (hand-written scan: the file may be 300 MB).
        var lineStarts = new List<int> { start };
        var span = bytes.AsSpan();
        for (int i = span[start..].IndexOf((byte)'\n') + start; i >= start && i < bytes.Length - 1;)
        {
            lineStarts.Add(i + 1);
            int next = span[(i + 1)..].IndexOf((byte)'\n');
            i = next < 0 ? -1 : i + 1 + next;
        }
        bool endsWithNewline = bytes[^1] == (byte)'\n';
        var header = System.Text.Encoding.UTF8.GetString(Line(bytes, lineStarts, 0));
        var format = TryDetect(header) ?? throw new FerDataException(path, 1, UnknownHeader(header));
        int expectedFields = format == FerCsvFormat.Kaggle ? 3 : 2;

        // The first data row fixes the image size; the rest are parsed in parallel against it.
        int firstData = 1;
        while (firstData < lineStarts.Count && IsBlank(Line(bytes, lineStarts, firstData))) firstData++;
        if (firstData >= lineStarts.Count) throw new FerDataException(path, 0, "has a header but no data rows");
        int pixelCount = CountPixels(FieldOf(Line(bytes, lineStarts, firstData), 1));
        int side = (int)Math.Round(Math.Sqrt(pixelCount));
        bool sizeKnown = pixelCount > 0 && side * side == pixelCount;
        if (!sizeKnown && options.OnBadRow == OnBadRow.Fail)
            throw new FerDataException(path, firstData + 1, pixelCount == 0 ? "row has no pixels" : $"row has {pixelCount} pixels, which is not a square image");

        var parser = new RowParser(bytes, lineStarts, format, expectedFields, classes.Count, sizeKnown ? side : 0, endsWithNewline);
        var chunks = new List<ChunkResult>();
        var parse = new TransformBlock<(int From, int To), ChunkResult>(range => parser.Parse(range.From, range.To),
            new ExecutionDataflowBlockOptions
            {
                MaxDegreeOfParallelism = options.MaxDegreeOfParallelism > 0 ? options.MaxDegreeOfParallelism : Environment.ProcessorCount,
                BoundedCapacity = 4 * Environment.ProcessorCount,
                EnsureOrdered = true,
                CancellationToken = ct,
            });
        var collect = new ActionBlock<ChunkResult>(chunks.Add, new ExecutionDataflowBlockOptions { CancellationToken = ct });
        parse.LinkTo(collect, new DataflowLinkOptions { PropagateCompletion = true });
        for (int from = firstData; from < lineStarts.Count; from += LinesPerChunk)
            parse.SendAsync((from, Math.Min(lineStarts.Count, from + LinesPerChunk)), ct).GetAwaiter().GetResult();
        parse.Complete();
        try { collect.Completion.GetAwaiter().GetResult(); }
        catch (AggregateException e) when (e.InnerException is not null) { throw e.InnerException; }

        // Merge in file order; data-row index = id for files without an id column.
        var skipped = new List<SkippedRow>();
        int total = chunks.Sum(c => c.Count);
        int p = sizeKnown ? side * side : 0;
        var pixels = new byte[(long)total * p];
        var ids = new long[total]; var labels = new int[total]; var usage = new FaceUsage[total];
        var seenIds = format == FerCsvFormat.CourseTest ? new Dictionary<long, long>() : null;
        int n = 0;
        foreach (var chunk in chunks)
        {
            foreach (var bad in chunk.Errors)
            {
                if (options.OnBadRow == OnBadRow.Fail) throw new FerDataException(path, bad.Line, bad.Problem);
                skipped.Add(bad);
            }
            for (int r = 0; r < chunk.Count; r++)
            {
                long id = chunk.Ids[r];
                if (seenIds is not null)
                {
                    if (seenIds.TryGetValue(id, out var firstLine))
                    {
                        var problem = $"duplicate id {id} (first on line {firstLine})";
                        if (options.OnBadRow == OnBadRow.Fail) throw new FerDataException(path, chunk.Lines[r], problem);
                        skipped.Add(new SkippedRow(chunk.Lines[r], problem));
                        continue;
                    }
                    seenIds[id] = chunk.Lines[r];
                }
                ids[n] = id; labels[n] = chunk.Labels[r]; usage[n] = chunk.Usage[r];
                Buffer.BlockCopy(chunk.Pixels, r * p, pixels, n * p, p);
                n++;
            }
        }
        if (n == 0) throw new FerDataException(path, 0, skipped.Count > 0 ? $"no valid rows ({skipped.Count} bad rows skipped)" : "has a header but no data rows");
        if (n < total)
        {
            Array.Resize(ref ids, n); Array.Resize(ref labels, n); Array.Resize(ref usage, n);
            Array.Resize(ref pixels, n * p);
        }
        skipped.Sort((a, b) => a.Line.CompareTo(b.Line));
        var faces = new FaceSet(side, classes, ids, labels, (long[])ids.Clone(), new bool[n], usage, pixels);
        return new FerCsvReadResult(path, format, faces, skipped, bytes.LongLength);
    }

    private static ReadOnlySpan<byte> Line(byte[] bytes, List<int> starts, int index)
    {
        int from = starts[index];
        // Up to the next line's start minus its '\n'; the last line may or may not end in '\n'.
        int to = index + 1 < starts.Count ? starts[index + 1] - 1 : bytes.Length;
        if (to > from && bytes[to - 1] == (byte)'\n') to--;
        if (to > from && bytes[to - 1] == (byte)'\r') to--;
        return bytes.AsSpan(from, to - from);
    }

    private static bool IsBlank(ReadOnlySpan<byte> line) => line.Trim((byte)' ').IsEmpty;

    /// <summary>The i-th comma-separated field of a line (quotes kept), or empty when missing.</summary>
    private static ReadOnlySpan<byte> FieldOf(ReadOnlySpan<byte> line, int index)
    {
        int field = 0, from = 0;
        bool quoted = false;
        for (int i = 0; i <= line.Length; i++)
        {
            if (i < line.Length && line[i] == (byte)'"') quoted = !quoted;
            if (i == line.Length || (line[i] == (byte)',' && !quoted))
            {
                if (field == index) return line[from..i];
                field++;
                from = i + 1;
            }
        }
        return [];
    }

    private static int CountPixels(ReadOnlySpan<byte> field)
    {
        int count = 0;
        bool inNumber = false;
        foreach (var b in field)
        {
            bool digit = b is >= (byte)'0' and <= (byte)'9';
            if (digit && !inNumber) count++;
            inNumber = digit;
        }
        return count;
    }

    private sealed class ChunkResult(int capacity, int pixelsPerImage)
    {
        public int Count;
        public readonly long[] Ids = new long[capacity];
        public readonly long[] Lines = new long[capacity];
        public readonly int[] Labels = new int[capacity];
        public readonly FaceUsage[] Usage = new FaceUsage[capacity];
        public readonly byte[] Pixels = new byte[capacity * pixelsPerImage];
        public readonly List<SkippedRow> Errors = [];
    }

    /// <summary>Parses lines straight from UTF-8 bytes into the output arrays (the hot path: no strings per row).</summary>
    private sealed class RowParser(byte[] bytes, List<int> lineStarts, FerCsvFormat format, int expectedFields,
        int numClasses, int side, bool endsWithNewline)
    {
        private readonly int _pixels = side * side;

        public ChunkResult Parse(int from, int to)
        {
            var result = new ChunkResult(to - from, _pixels);
            Span<Range> fields = stackalloc Range[8];
            for (int index = from; index < to; index++)
            {
                var line = Line(bytes, lineStarts, index);
                if (IsBlank(line)) continue;
                long lineNumber = index + 1;
                int dataRow = index - 1; // id of rows without an id column: position among the file's lines after the header
                var problem = ParseRow(line, fields, result, dataRow);
                if (problem is null) { result.Lines[result.Count - 1] = lineNumber; continue; }
                if (index == lineStarts.Count - 1 && !endsWithNewline) problem += " (the last row looks truncated)";
                result.Errors.Add(new SkippedRow(lineNumber, problem));
            }
            return result;
        }

        private string? ParseRow(ReadOnlySpan<byte> line, Span<Range> fields, ChunkResult result, int dataRow)
        {
            int count = SplitFields(line, fields);
            if (count > expectedFields) return $"row has {count} fields, expected {expectedFields} (extra column)";
            if (count < expectedFields) return $"row has {count} fields, expected {expectedFields} (missing column)";
            bool allEmpty = true;
            for (int f = 0; f < count; f++) if (!Unquote(line[fields[f]]).Trim((byte)' ').IsEmpty) allEmpty = false;
            if (allEmpty) return "row has only empty fields";
            if (side == 0) return "the image size is unknown: the first data row is not a square image";

            int r = result.Count;
            var first = Unquote(line[fields[0]]).Trim((byte)' ');
            if (format == FerCsvFormat.CourseTest)
            {
                if (!TryParseLong(first, out var id) || id < 0) return $"id '{Text(first)}' is not a non-negative integer";
                result.Ids[r] = id;
                result.Labels[r] = FaceSet.Unlabeled;
                result.Usage[r] = FaceUsage.Test;
            }
            else
            {
                if (!TryParseLong(first, out var label))
                    return first.IsEmpty ? "label is empty" : $"label '{Text(first)}' is not an integer";
                if (label < 0 || label >= numClasses) return $"label {label} is out of range 0..{numClasses - 1} ({numClasses} classes)";
                result.Ids[r] = dataRow;
                result.Labels[r] = (int)label;
                result.Usage[r] = FaceUsage.Training;
                if (format == FerCsvFormat.Kaggle)
                {
                    var u = Unquote(line[fields[2]]).Trim((byte)' ');
                    if (u.SequenceEqual("Training"u8)) result.Usage[r] = FaceUsage.Training;
                    else if (u.SequenceEqual("PublicTest"u8)) result.Usage[r] = FaceUsage.PublicTest;
                    else if (u.SequenceEqual("PrivateTest"u8)) result.Usage[r] = FaceUsage.PrivateTest;
                    else return $"Usage '{Text(u)}' is not Training, PublicTest or PrivateTest";
                }
            }

            var pixelsField = Unquote(line[fields[1]]);
            var output = result.Pixels.AsSpan(r * _pixels, _pixels);
            int k = 0, value = -1;
            for (int i = 0; i <= pixelsField.Length; i++)
            {
                byte b = i < pixelsField.Length ? pixelsField[i] : (byte)' ';
                if ((uint)(b - '0') <= 9)
                {
                    value = value < 0 ? b - '0' : value * 10 + (b - '0');
                    if (value > 255)
                    {
                        while (i + 1 < pixelsField.Length && (uint)(pixelsField[i + 1] - '0') <= 9 && value < 100000) value = value * 10 + (pixelsField[++i] - '0');
                        return $"pixel {k + 1} is {value}, expected 0..255";
                    }
                }
                else if (b == (byte)' ' || b == (byte)'\t')
                {
                    if (value >= 0)
                    {
                        if (k < _pixels) output[k] = (byte)value;
                        k++;
                        value = -1;
                    }
                }
                else
                {
                    int end = i;
                    while (end < pixelsField.Length && pixelsField[end] != (byte)' ') end++;
                    int begin = i;
                    while (begin > 0 && pixelsField[begin - 1] != (byte)' ') begin--;
                    return $"pixel {k + 1} is not an integer: '{Text(pixelsField[begin..end])}'";
                }
            }
            if (k != _pixels)
                return k * 1L == (long)Math.Round(Math.Sqrt(k)) * (long)Math.Round(Math.Sqrt(k)) || k == 0
                    ? $"row has {k} pixels, expected {_pixels} ({side}x{side})"
                    : $"row has {k} pixels, expected {_pixels} ({side}x{side}); {k} is not a square image";
            result.Count++;
            return null;
        }

        private static int SplitFields(ReadOnlySpan<byte> line, Span<Range> fields)
        {
            int count = 0, from = 0;
            bool quoted = false;
            for (int i = 0; i <= line.Length; i++)
            {
                if (i < line.Length && line[i] == (byte)'"') quoted = !quoted;
                if (i == line.Length || (line[i] == (byte)',' && !quoted))
                {
                    if (count < fields.Length) fields[count] = from..i;
                    count++;
                    from = i + 1;
                }
            }
            return count;
        }

        private static ReadOnlySpan<byte> Unquote(ReadOnlySpan<byte> field)
        {
            var t = field.Trim((byte)' ');
            return t.Length >= 2 && t[0] == (byte)'"' && t[^1] == (byte)'"' ? t[1..^1] : t;
        }

        private static bool TryParseLong(ReadOnlySpan<byte> text, out long value) =>
            System.Buffers.Text.Utf8Parser.TryParse(text, out value, out int consumed) && consumed == text.Length && text.Length > 0;

        private static string Text(ReadOnlySpan<byte> bytes) =>
            System.Text.Encoding.UTF8.GetString(bytes.Length > 40 ? bytes[..40] : bytes);
    }
}
