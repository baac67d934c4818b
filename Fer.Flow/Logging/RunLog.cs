using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Fer.Flow.Logging;

/// <summary>
/// The log of one run: every event as compact JSON (CLEF) in <c>runs/&lt;id&gt;/log.clef</c>, one per line,
/// and a readable copy on the console. Every event carries RunId and Flow.
/// </summary>
public static class RunLog
{
    public const string FileName = "log.clef";

    public static Logger Create(string runDir, string runId, string flow, bool console = true, LogEventLevel consoleLevel = LogEventLevel.Information)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.Debug()
            .Enrich.WithProperty("RunId", runId)
            .Enrich.WithProperty("Flow", flow)
            .WriteTo.File(new CompactJsonFormatter(), Path.Combine(runDir, FileName), flushToDiskInterval: TimeSpan.FromSeconds(1));
        if (console)
            config = config.WriteTo.Console(restrictedToMinimumLevel: consoleLevel,
                // No {Exception}: the console gets one line per event; stack traces go to log.clef only.
                outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}",
                standardErrorFromLevel: LogEventLevel.Error);
        return config.CreateLogger();
    }
}
