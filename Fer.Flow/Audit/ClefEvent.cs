using System.Globalization;
using System.Text.Json;
using Serilog.Events;
using Serilog.Parsing;

namespace Fer.Flow.Audit;

/// <summary>One event of a run log (CLEF: @t time, @l level, @mt template, @x exception, the rest properties).</summary>
public sealed class ClefEvent
{
    private static readonly MessageTemplateParser Parser = new();

    public required DateTimeOffset Timestamp { get; init; }
    public required LogEventLevel Level { get; init; }
    public required string Template { get; init; }
    public string? Exception { get; init; }
    public required JsonElement Raw { get; init; }
    public required string Json { get; init; }

    public string? Property(string name) =>
        Raw.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText() : null;

    public double? Number(string name) =>
        Raw.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    /// <summary>Renders messages as the console log does: strings literal (no quotes), structures as JSON.</summary>
    private static readonly Serilog.Formatting.Display.MessageTemplateTextFormatter MessageFormatter =
        new("{Message:lj}", CultureInfo.InvariantCulture);

    /// <summary>The message with its properties filled in, as the run's console log showed it.</summary>
    public string Render()
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        MessageFormatter.Format(ToLogEvent(), writer);
        return writer.ToString();
    }

    /// <summary>The event as Serilog's own, for rendering and for Serilog.Expressions filters (fer logs --where).</summary>
    public LogEvent ToLogEvent()
    {
        var properties = Raw.EnumerateObject().Where(p => !p.Name.StartsWith('@'))
            .Select(p => new LogEventProperty(p.Name, ToValue(p.Value)));
        return new LogEvent(Timestamp, Level, Exception is null ? null : new LoggedException(Exception), Parser.Parse(Template), properties);
    }

    /// <summary>An exception as the log holds it: its text (type, message, stack trace).</summary>
    private sealed class LoggedException(string text) : System.Exception(text.Split('\n')[0])
    {
        public override string ToString() => text;
    }

    private static LogEventPropertyValue ToValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => new ScalarValue(e.GetString()),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? new ScalarValue(l) : new ScalarValue(e.GetDouble()),
        JsonValueKind.True => new ScalarValue(true),
        JsonValueKind.False => new ScalarValue(false),
        JsonValueKind.Null => new ScalarValue(null),
        JsonValueKind.Array => new SequenceValue(e.EnumerateArray().Select(ToValue)),
        JsonValueKind.Object => new StructureValue(e.EnumerateObject().Where(p => p.Name != "$type")
            .Select(p => new LogEventProperty(p.Name, ToValue(p.Value)))),
        _ => new ScalarValue(e.GetRawText()),
    };

    public static LogEventLevel ParseLevel(string? text) => text switch
    {
        null => LogEventLevel.Information,
        _ when Enum.TryParse<LogEventLevel>(text, ignoreCase: true, out var l) => l,
        "debug" or "dbg" => LogEventLevel.Debug,
        "info" or "inf" => LogEventLevel.Information,
        "warn" or "wrn" => LogEventLevel.Warning,
        "err" or "eror" => LogEventLevel.Error,
        _ => throw new ArgumentException($"unknown level '{text}'; use verbose, debug, information, warning, error or fatal"),
    };
}

/// <summary>A run log read back: its events, whether it ends in a line cut off by a crash, and the lines skipped
/// because they are no CLEF event (not JSON, not an object, a bad @t or @l, binary junk), with the first of them.</summary>
public sealed record ClefLog(IReadOnlyList<ClefEvent> Events, bool Truncated, int MalformedLines)
{
    /// <summary>The first skipped line (1-based) and why, or null.</summary>
    public (int Line, string Problem)? FirstMalformed { get; init; }

    /// <summary>Limits on what `fer logs` reads: a run's log (a long training logs a few MB) and one event.</summary>
    public const long MaxLogBytes = 1L << 30;
    public const int MaxEventChars = 1 << 20;

    public static ClefLog Read(string path)
    {
        var events = new List<ClefEvent>();
        bool truncated = false;
        int malformed = 0;
        (int, string)? first = null;
        // Invalid UTF-8 (binary junk) becomes U+FFFD and fails as JSON or as a CLEF field below. Read as a stream: an
        // event longer than MaxEventChars is counted as malformed, not kept (one 500 MB event cost 8 GB when read whole).
        long size = new FileInfo(path).Length;
        if (size > MaxLogBytes)
            throw new InvalidDataException($"{path}: {size:N0} bytes, more than fer logs reads ({MaxLogBytes:N0}); filter it with jq or grep");
        var lines = Fer.Core.Storage.BoundedFile.ReadLines(path, MaxEventChars).ToList();
        bool endsWithNewline = new FileInfo(path).Length > 0 && EndsWithNewline(path);
        for (int i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            if (line is null)
            {
                malformed++;
                first ??= (i + 1, $"an event of more than {MaxEventChars:N0} characters");
                continue;
            }
            if (line.Length == 0) continue;
            try
            {
                events.Add(Parse(line));
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or ArgumentException)
            {
                // A process killed mid-write leaves a partial last line: that marks the run interrupted.
                if (i == lines.Count - 1 && !endsWithNewline && e is JsonException) truncated = true;
                else
                {
                    malformed++;
                    first ??= (i + 1, e is JsonException ? "not JSON" : e.Message);
                }
            }
        }
        return new ClefLog(events, truncated, malformed) { FirstMalformed = first };
    }

    /// <summary>One CLEF line; throws when it is not JSON, not an object, or has a bad @t, @l, @mt or @x.</summary>
    public static ClefEvent Parse(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement.Clone();
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not a CLEF event");
        if (!root.TryGetProperty("@t", out var t)) throw new FormatException("no @t timestamp");
        if (t.ValueKind != JsonValueKind.String || !t.TryGetDateTimeOffset(out var timestamp)) throw new FormatException($"bad @t {Short(t.GetRawText())}");
        var level = LogEventLevel.Information;
        if (root.TryGetProperty("@l", out var l))
        {
            if (l.ValueKind != JsonValueKind.String) throw new FormatException($"bad @l {Short(l.GetRawText())}");
            try { level = ClefEvent.ParseLevel(l.GetString()); }
            catch (ArgumentException) { throw new FormatException($"bad @l {Short(l.GetRawText())}"); }
        }
        return new ClefEvent
        {
            Timestamp = timestamp,
            Level = level,
            Template = Text(root, "@mt") ?? Text(root, "@m") ?? "",
            Exception = Text(root, "@x"),
            Raw = root,
            Json = line,
        };
    }

    private static string? Text(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new FormatException($"{name} is not a string");

    private static string Short(string text) => text.Length > 40 ? text[..40] + "..." : text;

    private static bool EndsWithNewline(string path)
    {
        using var s = File.OpenRead(path);
        s.Seek(-1, SeekOrigin.End);
        return s.ReadByte() == '\n';
    }
}
