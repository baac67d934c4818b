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
        var properties = Raw.EnumerateObject().Where(p => !p.Name.StartsWith('@'))
            .Select(p => new LogEventProperty(p.Name, ToValue(p.Value)));
        var logEvent = new LogEvent(Timestamp, Level, null, Parser.Parse(Template), properties);
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        MessageFormatter.Format(logEvent, writer);
        return writer.ToString();
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

/// <summary>A run log read back: its events, and whether it ends in a line cut off by a crash.</summary>
public sealed record ClefLog(IReadOnlyList<ClefEvent> Events, bool Truncated, int MalformedLines)
{
    public static ClefLog Read(string path)
    {
        var events = new List<ClefEvent>();
        bool truncated = false;
        int malformed = 0;
        var lines = File.ReadAllLines(path);
        bool endsWithNewline = new FileInfo(path).Length > 0 && EndsWithNewline(path);
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement.Clone();
                events.Add(new ClefEvent
                {
                    Timestamp = root.TryGetProperty("@t", out var t) ? t.GetDateTimeOffset() : default,
                    Level = ClefEvent.ParseLevel(root.TryGetProperty("@l", out var l) ? l.GetString() : null),
                    Template = root.TryGetProperty("@mt", out var mt) ? mt.GetString() ?? "" : root.TryGetProperty("@m", out var m) ? m.GetString() ?? "" : "",
                    Exception = root.TryGetProperty("@x", out var x) ? x.GetString() : null,
                    Raw = root,
                    Json = line,
                });
            }
            catch (JsonException)
            {
                // A process killed mid-write leaves a partial last line: that marks the run interrupted.
                if (i == lines.Length - 1 && !endsWithNewline) truncated = true;
                else malformed++;
            }
        }
        return new ClefLog(events, truncated, malformed);
    }

    private static bool EndsWithNewline(string path)
    {
        using var s = File.OpenRead(path);
        s.Seek(-1, SeekOrigin.End);
        return s.ReadByte() == '\n';
    }
}
