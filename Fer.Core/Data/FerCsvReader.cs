using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Dataflow;

namespace Fer.Core.Data;

public enum FerCsvFormat { Kaggle, CourseTrain, CourseTest }

public enum OnBadRow { Fail, Skip }

/// <param name="ClassNames">Label names in label order; null: the 7 FER2013 emotions.</param>
/// <param name="MaxDegreeOfParallelism">Parser threads; 0: one per core.</param>
/// <param name="Progress">Told after each parsed block of rows, in file order (from one thread at a time).</param>
public sealed record FerCsvReadOptions(OnBadRow OnBadRow = OnBadRow.Fail, IReadOnlyList<string>? ClassNames = null, int MaxDegreeOfParallelism = 0,
    IProgress<CsvReadProgress>? Progress = null);

/// <summary>How far a read has got: data rows parsed of all, and the bytes of the file they span.</summary>
public sealed record CsvReadProgress(string Path, long RowsParsed, long Rows, long BytesParsed, long Bytes, TimeSpan Elapsed)
{
    public double MegabytesPerSecond => Elapsed > TimeSpan.Zero ? BytesParsed / 1e6 / Elapsed.TotalSeconds : 0;
}

public sealed record SkippedRow(long Line, string Problem);

/// <param name="Skipped">The first <see cref="FerCsvReader.KeptSkippedRows"/> skipped rows, by line.</param>
/// <param name="SkippedCount">How many rows were skipped in all.</param>
/// <param name="SkippedByProblem">Skipped rows per kind of problem (the message with its numbers and values elided).</param>
public sealed record FerCsvReadResult(string Path, FerCsvFormat Format, FaceSet Faces, IReadOnlyList<SkippedRow> Skipped, long Bytes)
{
    public long SkippedCount { get; init; }
    public IReadOnlyDictionary<string, long> SkippedByProblem { get; init; } = new Dictionary<string, long>();
}

/// <summary>
/// Reads FER2013 CSV files: Kaggle's fer2013.csv (emotion,pixels,Usage) and the course's train.csv
/// (label,feature) and test.csv (id,feature), detected by header. Tolerates CRLF, a UTF-8 BOM, a missing final
/// newline, quoted fields and trailing blank lines. Strict by default: the first bad row stops the read with
/// the file, line and problem (the lowest bad line, whatever the parallelism); OnBadRow.Skip skips bad rows and
/// returns them. The image size comes from the first well-formed data row. Ids: the id column of test.csv, else the
/// row's index among the non-blank data rows (bad rows included). The file is memory-mapped while it is read.
/// </summary>
public static class FerCsvReader
{
    /// <summary>Lines per parse job: big enough to amortise scheduling, small enough to balance two cores.</summary>
    private const int LinesPerChunk = 1024;

    /// <summary>Skipped rows a skipping read keeps one by one; the rest are only counted, per kind of problem, so
    /// memory depends on the good rows, not on how many bad ones a file has.</summary>
    public const int KeptSkippedRows = 20;

    /// <summary>The kind of a problem: its message with numbers as N and quoted values as '...'.</summary>
    public static string ProblemKind(string problem) =>
        System.Text.RegularExpressions.Regex.Replace(
            System.Text.RegularExpressions.Regex.Replace(problem, "'[^']*'", "'...'"), "-?[0-9]+", "N");

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
        // Only regular files: a FIFO or a device would block the open or never end (checked without opening it).
        var kind = Fer.Core.Storage.FileStat.Of(path).Kind;
        if (kind == Fer.Core.Storage.FileKind.Directory) throw new FerDataException(path, 0, "is a directory, not a CSV file");
        if (kind != Fer.Core.Storage.FileKind.Regular) throw new FerDataException(path, 0, Fer.Core.Storage.FileStat.Describe(kind));
        // The file is memory-mapped rather than copied into a byte[]: a copy is 300 MB of fresh memory, which on
        // machines with costly page faults (VMs, sandboxes) took 4x longer than the parse itself (measured: 412 MB/s
        // mapped, 153 MB/s with File.ReadAllBytes, same machine and file). The price: a file truncated by another
        // process during the read ends this one (SIGBUS) instead of raising an error. Files changed but not
        // truncated are caught by the ingest stage, which hashes its inputs before and after.
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FerDataException(path, 0, $"cannot be read: {e.Message}"); }
        using (stream)
        {
            long length = stream.Length;
            if (length == 0) throw new FerDataException(path, 0, "file is empty");
            if (length > int.MaxValue) throw new FerDataException(path, 0, $"is {length / 1e9:0.0} GB; CSV files over 2 GB are not supported");
            MemoryMappedFile map;
            MemoryMappedViewAccessor view;
            try
            {
                map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
                view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new FerDataException(path, 0, $"cannot be mapped into memory: {e.Message}"); }
            using var mapToDispose = map;
            using var viewToDispose = view;
            var handle = view.SafeMemoryMappedViewHandle;
            unsafe
            {
                byte* pointer = null;
                handle.AcquirePointer(ref pointer);
                try { return Read(path, new FileBytes(pointer + view.PointerOffset, (int)length), options, ct); }
                finally { handle.ReleasePointer(); }
            }
        }
    }

    /// <summary>The bytes of a mapped file, valid while the mapping is open.</summary>
    private readonly unsafe struct FileBytes(byte* pointer, int length)
    {
        public ReadOnlySpan<byte> Span => new(pointer, length);
    }

    private static FerCsvReadResult Read(string path, FileBytes file, FerCsvReadOptions options, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var classes = options.ClassNames ?? FaceSet.Fer2013Classes;
        var bytes = file.Span;
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (start == bytes.Length) throw new FerDataException(path, 0, "file is empty (nothing but a UTF-8 byte order mark)");
        // A NUL near the start means a binary file (a CSV never holds one); later NULs surface as bad rows.
        int nul = bytes[..Math.Min(bytes.Length, 4096)].IndexOf((byte)0);
        if (nul >= 0) throw new FerDataException(path, 0, $"contains NUL bytes (first at byte {nul}): it is binary, not a CSV file");

        var lineStarts = LineStarts(bytes, start);
        bool endsWithNewline = bytes[^1] == (byte)'\n';
        var header = System.Text.Encoding.UTF8.GetString(Line(bytes, lineStarts, 0));
        var format = TryDetect(header) ?? throw new FerDataException(path, 1, UnknownHeader(header));
        int expectedFields = format == FerCsvFormat.Kaggle ? 3 : 2;

        // The first well-formed data row (right field count, square pixel count) fixes the image size; the rows are
        // then parsed in parallel against it. Rows before it are bad and are reported (or skipped) by the parser.
        int firstData = 1;
        while (firstData < lineStarts.Count && IsBlank(Line(bytes, lineStarts, firstData))) firstData++;
        if (firstData >= lineStarts.Count) throw new FerDataException(path, 0, "has a header but no data rows");
        int side = ImageSide(path, bytes, lineStarts, firstData, expectedFields, options.OnBadRow);
        bool sizeKnown = side > 0;

        // Each non-blank data line gets a slot in the output arrays up front, so parse jobs write their rows in place
        // (no per-chunk buffers to copy, nothing to move in a clean file). Without an id column a row's id is its
        // slot: its index among the non-blank data rows, bad ones included, so skipping a bad row leaves the other
        // rows' ids as they would be in the clean file.
        // Only a line long enough to hold an image (p pixels need 2p-1 bytes) gets a slot with room for its pixels:
        // a file of millions of short bad rows costs a few bytes per line, not an image each (which overflowed).
        int p = sizeKnown ? side * side : 0;
        int minBytes = sizeKnown ? 2 * p - 1 : 0;
        var dataLines = new List<int>(Math.Min(lineStarts.Count - firstData, 1 << 20));
        var slotOf = new List<int>(Math.Min(lineStarts.Count - firstData, 1 << 20));
        int slots = 0;
        for (int index = firstData; index < lineStarts.Count; index++)
        {
            var line = Line(bytes, lineStarts, index);
            if (IsBlank(line)) continue;
            dataLines.Add(index);
            slotOf.Add(sizeKnown && line.Length >= minBytes ? slots++ : -1); // no size: every row is bad, none needs a slot
        }
        int total = dataLines.Count;
        if ((long)slots * p > Array.MaxLength)
            throw new FerDataException(path, 0, $"holds {slots} images of {side}x{side} pixels: more than one array can hold");
        var rows = new RowArrays(slots, p);
        var parser = new RowParser(file, lineStarts, dataLines, slotOf, rows, format, expectedFields, classes.Count, side, endsWithNewline,
            stopAfterFirstError: options.OnBadRow == OnBadRow.Fail);
        var errors = new ErrorTally();
        long fileLength = bytes.Length;
        ParseInParallel(parser, total, errors, options, ct, rowsParsed =>
        {
            long bytesParsed = rowsParsed < total ? lineStarts[dataLines[(int)rowsParsed]] : fileLength;
            options.Progress?.Report(new CsvReadProgress(path, rowsParsed, total, bytesParsed, fileLength, clock.Elapsed));
        });
        var (firstErrors, byProblem, errorCount) = (errors.First, errors.ByProblem, errors.Count);

        // Compact in file order; duplicate ids by line. Errors came in file order (ordered chunks, each in line order);
        // a strict read reports the lowest bad line, a parse error or a duplicate id, whichever comes first.
        var seenIds = format == FerCsvFormat.CourseTest ? new Dictionary<long, long>() : null;
        var duplicates = new List<SkippedRow>();
        long duplicateCount = 0;
        long firstParseError = firstErrors.Count > 0 ? firstErrors[0].Line : long.MaxValue;
        int n = 0;
        for (int row = 0; row < total; row++)
        {
            int slot = slotOf[row];
            if (slot < 0 || !rows.Valid[slot]) continue;
            long id = rows.Ids[slot];
            if (seenIds is not null)
            {
                long line = dataLines[row] + 1;
                if (seenIds.TryGetValue(id, out var firstLine))
                {
                    var problem = $"duplicate id {id} (first on line {firstLine})";
                    if (options.OnBadRow == OnBadRow.Fail)
                    {
                        if (line < firstParseError) throw new FerDataException(path, line, problem);
                        break;
                    }
                    duplicateCount++;
                    if (duplicates.Count < KeptSkippedRows) duplicates.Add(new SkippedRow(line, problem));
                    var key = ProblemKind(problem);
                    byProblem[key] = byProblem.GetValueOrDefault(key) + 1;
                    continue;
                }
                seenIds[id] = line;
            }
            if (n != slot)
            {
                rows.Ids[n] = id; rows.Labels[n] = rows.Labels[slot]; rows.Usage[n] = rows.Usage[slot];
                Buffer.BlockCopy(rows.Pixels, slot * p, rows.Pixels, n * p, p);
            }
            n++;
        }
        if (options.OnBadRow == OnBadRow.Fail && firstErrors.Count > 0)
            throw new FerDataException(path, firstErrors[0].Line, firstErrors[0].Problem);
        long skippedCount = errorCount + duplicateCount;
        var (ids, labels, usage, pixels) = (rows.Ids, rows.Labels, rows.Usage, rows.Pixels);
        if (n == 0) throw new FerDataException(path, 0, skippedCount > 0 ? $"no valid rows ({skippedCount} bad rows skipped)" : "has a header but no data rows");
        if (n < slots)
        {
            Array.Resize(ref ids, n); Array.Resize(ref labels, n); Array.Resize(ref usage, n);
            Array.Resize(ref pixels, n * p);
        }
        var skipped = firstErrors.Concat(duplicates).OrderBy(x => x.Line).Take(KeptSkippedRows).ToList();
        var faces = new FaceSet(side, classes, ids, labels, (long[])ids.Clone(), new bool[n], usage, pixels);
        return new FerCsvReadResult(path, format, faces, skipped, bytes.Length)
        {
            SkippedCount = skippedCount,
            SkippedByProblem = new SortedDictionary<string, long>(byProblem, StringComparer.Ordinal),
        };
    }

    /// <summary>
    /// The side of the images: the first well-formed data row's (right field count, square pixel count). When no row
    /// gives one, a strict read reports the first data row by its field or pixel count; a skipping read gets 0 (every row bad).
    /// </summary>
    private static int ImageSide(string path, ReadOnlySpan<byte> bytes, List<int> lineStarts, int firstData, int expectedFields, OnBadRow onBadRow)
    {
        for (int index = firstData; index < lineStarts.Count; index++)
        {
            var line = Line(bytes, lineStarts, index);
            if (IsBlank(line) || CountFields(line) != expectedFields) continue;
            int count = CountPixels(FieldOf(line, 1));
            int root = (int)Math.Round(Math.Sqrt(count));
            if (count > 0 && root * root == count) return root;
        }
        if (onBadRow == OnBadRow.Skip) return 0;
        var first = Line(bytes, lineStarts, firstData);
        int fields = CountFields(first);
        int pixels = CountPixels(FieldOf(first, 1));
        throw new FerDataException(path, firstData + 1,
            fields != expectedFields ? $"row has {fields} fields, expected {expectedFields} ({(fields > expectedFields ? "extra" : "missing")} column)"
            : pixels == 0 ? "row has no pixels"
            : $"row has {pixels} pixels, which is not a square image");
    }

    /// <summary>
    /// Parse errors, kept as they arrive (in file order): the first one (strict), or the first few and a count per kind
    /// (skipping).
    /// </summary>
    private sealed class ErrorTally
    {
        private readonly Dictionary<string, string> _kindOf = new(StringComparer.Ordinal); // the same message recurs in a bad file
        public List<SkippedRow> First { get; } = [];
        public Dictionary<string, long> ByProblem { get; } = new(StringComparer.Ordinal);
        public long Count { get; private set; }

        public void Add(SkippedRow error)
        {
            Count++;
            if (First.Count < KeptSkippedRows) First.Add(error);
            if (!_kindOf.TryGetValue(error.Problem, out var key))
            {
                key = ProblemKind(error.Problem);
                if (_kindOf.Count < 4096) _kindOf[error.Problem] = key;
            }
            ByProblem[key] = ByProblem.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>
    /// Parses the data rows in chunks on the dataflow's workers, in order; reports the rows parsed after each chunk and
    /// tallies the errors. Returns only once no job runs: the jobs read the mapped file, unmapped after the read.
    /// </summary>
    private static void ParseInParallel(RowParser parser, int total, ErrorTally errors, FerCsvReadOptions options, CancellationToken ct, Action<long> parsed)
    {
        long rowsParsed = 0;
        var parse = new TransformBlock<(int From, int To), (int Rows, List<SkippedRow> Errors)>(range => (range.To - range.From, parser.Parse(range.From, range.To)),
            new ExecutionDataflowBlockOptions
            {
                MaxDegreeOfParallelism = options.MaxDegreeOfParallelism > 0 ? options.MaxDegreeOfParallelism : Environment.ProcessorCount,
                BoundedCapacity = 4 * Environment.ProcessorCount,
                EnsureOrdered = true,
                CancellationToken = ct,
            });
        var collect = new ActionBlock<(int Rows, List<SkippedRow> Errors)>(chunk =>
        {
            rowsParsed += chunk.Rows;
            parsed(rowsParsed);
            foreach (var error in chunk.Errors) errors.Add(error);
        }, new ExecutionDataflowBlockOptions { CancellationToken = ct, BoundedCapacity = 4 * Environment.ProcessorCount });
        parse.LinkTo(collect, new DataflowLinkOptions { PropagateCompletion = true });
        try
        {
            for (int from = 0; from < total; from += LinesPerChunk)
                parse.SendAsync((from, Math.Min(total, from + LinesPerChunk)), ct).GetAwaiter().GetResult();
            parse.Complete();
            collect.Completion.GetAwaiter().GetResult();
        }
        finally
        {
            // The jobs read the mapped file, which is unmapped when the read returns: none may outlive it, even
            // when the read is cancelled (a cancelled block completes once its running jobs have finished).
            parse.Complete();
            try { parse.Completion.Wait(CancellationToken.None); }
            catch (AggregateException) { } // the reason is already on its way out (cancellation)
        }
        ct.ThrowIfCancellationRequested();
    }

    // The hot methods are compiled fully optimised at once: a file is usually read once, so a parse should not start
    // on tier-0 code. (The slow first reads once seen here came from fresh-memory page faults, not from the JIT.)

    /// <summary>Start offset of every line (the first at <paramref name="start"/>, after a BOM).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static List<int> LineStarts(ReadOnlySpan<byte> bytes, int start)
    {
        var lineStarts = new List<int>(bytes.Length / 4096 + 16) { start };
        var span = bytes;
        int from = start;
        while (true)
        {
            int newline = span[from..].IndexOf((byte)'\n');
            if (newline < 0) break;
            from += newline + 1;
            if (from >= bytes.Length) break; // a final '\n' ends the last line rather than starting an empty one
            lineStarts.Add(from);
        }
        return lineStarts;
    }

    private static ReadOnlySpan<byte> Line(ReadOnlySpan<byte> bytes, List<int> starts, int index)
    {
        int from = starts[index];
        // Up to the next line's start minus its '\n'; the last line may or may not end in '\n'.
        int to = index + 1 < starts.Count ? starts[index + 1] - 1 : bytes.Length;
        if (to > from && bytes[to - 1] == (byte)'\n') to--;
        if (to > from && bytes[to - 1] == (byte)'\r') to--;
        return bytes.Slice(from, to - from);
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

    /// <summary>Fields of a line: commas outside quotes, plus one.</summary>
    private static int CountFields(ReadOnlySpan<byte> line)
    {
        int count = 1;
        bool quoted = false;
        foreach (var b in line)
        {
            if (b == (byte)'"') quoted = !quoted;
            else if (b == (byte)',' && !quoted) count++;
        }
        return count;
    }

    /// <summary>Whitespace-separated tokens of a pixel field (quotes count as separators): the parser's pixel count
    /// when every token is a number, so a bad token is reported as such rather than as a wrong size.</summary>
    private static int CountPixels(ReadOnlySpan<byte> field)
    {
        int count = 0;
        bool inToken = false;
        foreach (var b in field)
        {
            bool separator = b is (byte)' ' or (byte)'\t' or (byte)'"';
            if (!separator && !inToken) count++;
            inToken = !separator;
        }
        return count;
    }

    /// <summary>The output columns, one slot per non-blank data line; parse jobs fill disjoint slots.</summary>
    private sealed class RowArrays(int slots, int pixelsPerImage)
    {
        /// <summary>The id column (course test.csv), else the slot.</summary>
        public readonly long[] Ids = new long[slots];
        public readonly int[] Labels = new int[slots];
        public readonly FaceUsage[] Usage = new FaceUsage[slots];
        public readonly byte[] Pixels = new byte[(long)slots * pixelsPerImage];
        /// <summary>Whether the slot's line parsed without a problem.</summary>
        public readonly bool[] Valid = new bool[slots];
    }

    /// <summary>Parses lines straight from UTF-8 bytes into the output arrays (the hot path: no strings per row).</summary>
    private sealed class RowParser(FileBytes file, List<int> lineStarts, List<int> dataLines, List<int> slotOf, RowArrays rows, FerCsvFormat format,
        int expectedFields, int numClasses, int side, bool endsWithNewline, bool stopAfterFirstError)
    {
        private readonly int _pixels = side * side;
        /// <summary>Lowest bad line found so far (strict reads): jobs wholly after it need no parsing.</summary>
        private long _firstErrorLine = long.MaxValue;

        /// <summary>Data rows whose line is too short for an image are parsed into this scratch row (per thread).</summary>
        [ThreadStatic] private static RowArrays? _scratch;

        /// <summary>Parses data rows [from, to); returns their problems in row order.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public List<SkippedRow> Parse(int from, int to)
        {
            var errors = new List<SkippedRow>();
            if (stopAfterFirstError && dataLines[from] + 1 > Interlocked.Read(ref _firstErrorLine)) return errors;
            Span<Range> fields = stackalloc Range[8];
            for (int row = from; row < to; row++)
            {
                int index = dataLines[row];
                int slot = slotOf[row];
                var target = rows;
                if (slot < 0)
                {
                    target = _scratch is { } s && s.Pixels.Length == _pixels ? s : _scratch = new RowArrays(1, _pixels);
                }
                var problem = ParseRow(Line(file.Span, lineStarts, index), fields, target, slot < 0 ? 0 : slot, row);
                if (slot >= 0) rows.Valid[slot] = problem is null;
                else problem ??= "row is too short to hold an image"; // cannot happen: 2p-1 bytes are needed
                if (problem is null) continue;
                long lineNumber = index + 1;
                if (index == lineStarts.Count - 1 && !endsWithNewline) problem += " (the last row looks truncated)";
                errors.Add(new SkippedRow(lineNumber, problem));
                if (stopAfterFirstError)
                {
                    for (long seen = Interlocked.Read(ref _firstErrorLine); lineNumber < seen;)
                    {
                        long was = Interlocked.CompareExchange(ref _firstErrorLine, lineNumber, seen);
                        if (was == seen) break;
                        seen = was;
                    }
                    break;
                }
            }
            return errors;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private string? ParseRow(ReadOnlySpan<byte> line, Span<Range> fields, RowArrays rows, int r, int row)
        {
            if (line.IndexOfAnyExcept(" ,\t\""u8) < 0) return "row has only empty fields (nothing but commas)";
            int count = SplitFields(line, fields, out bool quoteOpen);
            if (quoteOpen) return "row has an unterminated quoted field (odd number of '\"')";
            if (count > expectedFields) return $"row has {count} fields, expected {expectedFields} (extra column)";
            if (count < expectedFields) return $"row has {count} fields, expected {expectedFields} (missing column)";
            if (side == 0) return "the image size is unknown: no data row has a square number of pixels";

            var first = Unquote(line[fields[0]]).Trim((byte)' ');
            if (format == FerCsvFormat.CourseTest)
            {
                if (!TryParseLong(first, out var id) || id < 0) return $"id '{Text(first)}' is not a non-negative integer";
                rows.Ids[r] = id;
                rows.Labels[r] = FaceSet.Unlabeled;
                rows.Usage[r] = FaceUsage.Test;
            }
            else
            {
                if (!TryParseLong(first, out var label))
                    return first.IsEmpty ? "label is empty" : $"label '{Text(first)}' is not an integer";
                if (label < 0 || label >= numClasses) return $"label {label} is out of range 0..{numClasses - 1} ({numClasses} classes)";
                rows.Ids[r] = row;
                rows.Labels[r] = (int)label;
                rows.Usage[r] = FaceUsage.Training;
                if (format == FerCsvFormat.Kaggle)
                {
                    var u = Unquote(line[fields[2]]).Trim((byte)' ');
                    if (u.SequenceEqual("Training"u8)) rows.Usage[r] = FaceUsage.Training;
                    else if (u.SequenceEqual("PublicTest"u8)) rows.Usage[r] = FaceUsage.PublicTest;
                    else if (u.SequenceEqual("PrivateTest"u8)) rows.Usage[r] = FaceUsage.PrivateTest;
                    else return $"Usage '{Text(u)}' is not Training, PublicTest or PrivateTest";
                }
            }

            var pixelsField = Unquote(line[fields[1]]);
            var output = rows.Pixels.AsSpan(r * _pixels, _pixels);
            // One number per step (skip separators, read digits) rather than a per-byte state machine; with the vectorised
            // field split this took the whole read from ~455 to ~620 MB/s (30 MB file, warm).
            int k = 0, i = 0, n = pixelsField.Length;
            while (true)
            {
                while (i < n && pixelsField[i] is (byte)' ' or (byte)'\t') i++;
                if (i == n) break;
                int begin = i, value = 0;
                uint digit;
                while (i < n && (digit = (uint)(pixelsField[i] - '0')) <= 9)
                {
                    value = value * 10 + (int)digit;
                    i++;
                    if (value > 255)
                    {
                        while (i < n && (digit = (uint)(pixelsField[i] - '0')) <= 9 && value < 100000) { value = value * 10 + (int)digit; i++; }
                        bool more = i < n && (uint)(pixelsField[i] - '0') <= 9; // cut short: say so rather than show a wrong number
                        return $"pixel {k + 1} is {value}{(more ? "..." : "")}, expected 0..255";
                    }
                }
                if (i == begin || (i < n && pixelsField[i] is not ((byte)' ' or (byte)'\t')))
                {
                    int end = i;
                    while (end < n && pixelsField[end] != (byte)' ') end++;
                    while (begin > 0 && pixelsField[begin - 1] != (byte)' ') begin--;
                    return $"pixel {k + 1} is not an integer: '{Text(pixelsField[begin..end])}'";
                }
                if (k < output.Length) output[k] = (byte)value;
                k++;
            }
            if (k != _pixels) return $"row has {k} pixels, expected {_pixels} ({side}x{side})";
            return null;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static int SplitFields(ReadOnlySpan<byte> line, Span<Range> fields, out bool quoteOpen)
        {
            // Jumps from comma/quote to comma/quote (vectorised search): the pixel field is thousands of bytes.
            int count = 0, from = 0, i = 0;
            bool quoted = false;
            while (true)
            {
                int next = line[i..].IndexOfAny((byte)',', (byte)'"');
                if (next < 0) break;
                i += next;
                if (line[i] == (byte)'"') quoted = !quoted;
                else if (!quoted)
                {
                    if (count < fields.Length) fields[count] = from..i;
                    count++;
                    from = i + 1;
                }
                i++;
            }
            if (count < fields.Length) fields[count] = from..line.Length;
            count++;
            quoteOpen = quoted;
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
