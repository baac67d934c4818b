using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;

namespace Fer.Flow.Logging;

/// <summary>
/// The log of one run: every event as compact JSON (CLEF) in <c>runs/&lt;id&gt;/log.clef</c>, one per line,
/// and a readable copy on the console. Every event carries RunId and Flow.
/// </summary>
public static class RunLog
{
    public const string FileName = "log.clef";

    public static Logger Create(string runDir, string runId, string flow, bool console = true, LogEventLevel consoleLevel = LogEventLevel.Information,
        string? file = null, IReadOnlyDictionary<string, string>? properties = null)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.Debug()
            .Enrich.WithProperty("RunId", runId)
            .Enrich.WithProperty("Flow", flow);
        foreach (var (name, value) in properties ?? new Dictionary<string, string>()) config = config.Enrich.WithProperty(name, value);
        var fileLog = new LoggerConfiguration().MinimumLevel.Debug()
            .WriteTo.File(new CompactJsonFormatter(), file ?? Path.Combine(runDir, FileName), flushToDiskInterval: TimeSpan.FromSeconds(1))
            .CreateLogger();
        config = config.WriteTo.Sink(new FullDiskTolerantSink(fileLog));
        if (console)
        {
            // No {Exception}: the console gets one line per event; stack traces go to log.clef only.
            const string template = "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}";
            // While the live progress display runs, console lines are printed above it through Spectre.Console.
            config = config
                .WriteTo.Logger(c => c.Filter.ByExcluding(_ => Fer.Flow.Pipeline.LiveProgress.Active)
                    .WriteTo.Console(restrictedToMinimumLevel: consoleLevel, outputTemplate: template, standardErrorFromLevel: LogEventLevel.Error))
                .WriteTo.Sink(new AboveLiveDisplaySink(new MessageTemplateTextFormatter(template)), consoleLevel);
        }
        return config.CreateLogger();
    }

    /// <summary>
    /// The log file's sink, whose last flush on a full disk must not turn a clean "cannot write" (exit 2, one line) into
    /// an unhandled IOException from a `using`: Serilog guards writes (they go to SelfLog) but not the final dispose.
    /// </summary>
    private sealed class FullDiskTolerantSink(Logger file) : ILogEventSink, IDisposable
    {
        public void Emit(LogEvent logEvent) => file.Write(logEvent);

        public void Dispose()
        {
            try { file.Dispose(); }
            catch (IOException e) { Serilog.Debugging.SelfLog.WriteLine("The log file could not be flushed: {0}", e.Message); }
        }
    }

    private sealed class AboveLiveDisplaySink(MessageTemplateTextFormatter formatter) : ILogEventSink
    {
        public void Emit(LogEvent e)
        {
            if (!Fer.Flow.Pipeline.LiveProgress.Active) return;
            var text = new StringWriter();
            formatter.Format(e, text);
            Fer.Flow.Pipeline.LiveProgress.WriteAbove(text.ToString());
        }
    }
}
