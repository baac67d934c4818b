using Spectre.Console;

namespace Fer.Flow.Pipeline;

/// <summary>
/// Where stages report the progress a person watches (training, reading a large file, explaining a model).
/// On a terminal: one live Spectre.Console display, a row per task running (Spectre allows one live display at a
/// time, so rows of stages running at once share it), with log lines printed above it. Otherwise (CI, a pipe,
/// in-process tests): plain lines, each task's first and last and one per interval in between, so logs stay readable.
/// </summary>
public sealed class ProgressDisplay
{
    /// <summary>The plain lines' spacing when nothing else is asked.</summary>
    public static readonly TimeSpan DefaultPlainInterval = TimeSpan.FromSeconds(15);

    private readonly bool _live;
    private readonly TextWriter _plain;
    private readonly TimeSpan _interval;
    private readonly Lock _writeGate = new();

    private ProgressDisplay(bool live, TextWriter plain, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(plain);
        if (interval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), "the interval must not be negative");
        (_live, _plain, _interval) = (live, plain, interval);
    }

    /// <summary>A live display on the console; plain lines on standard output if the terminal cannot show one.</summary>
    public static ProgressDisplay Live() => new(true, Console.Out, DefaultPlainInterval);

    /// <summary>Plain lines to <paramref name="writer"/>, at most one per task and interval between its first and last.</summary>
    public static ProgressDisplay Plain(TextWriter writer, TimeSpan? interval = null) => new(false, writer, interval ?? DefaultPlainInterval);

    /// <summary>No lines at all (the callers' log events still fall due once per interval).</summary>
    public static ProgressDisplay Silent() => Plain(TextWriter.Null);

    /// <summary>A row for one task (a member's training, a file being read); finish it by disposing it.</summary>
    public ProgressRow Start(string task)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(task);
        return new ProgressRow(this, task, _live ? LiveProgress.Add(task) : null);
    }

    internal TimeSpan Interval => _interval;

    internal void WritePlain(string line)
    {
        lock (_writeGate) _plain.WriteLine(line);
    }
}

/// <summary>
/// One task's progress: <see cref="Report"/> as work is done, <see cref="Dispose"/> when it ends (also when it fails:
/// the live row stops and the plain output gets its last line).
/// </summary>
public sealed class ProgressRow : IDisposable
{
    private readonly ProgressDisplay _display;
    private readonly string _task;
    private readonly LiveProgress.Row? _live;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private TimeSpan? _lastPlain;
    private string? _lastLine, _lastPrinted;
    private bool _finished;

    internal ProgressRow(ProgressDisplay display, string task, LiveProgress.Row? live) => (_display, _task, _live) = (display, task, live);

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>
    /// <paramref name="done"/> of <paramref name="total"/> units, described by <paramref name="line"/> (shown as is).
    /// Returns true when a plain line fell due (the first report, then once per interval): the moment for the caller
    /// to log its structured progress event, so the log holds as many of them as the console has lines.
    /// </summary>
    public bool Report(string line, double done, double total)
    {
        ArgumentNullException.ThrowIfNull(line);
        _lastLine = line;
        if (_live is not null) { _live.Update(line, done, total); return false; }
        var now = _clock.Elapsed;
        if (_lastPlain is { } last && now - last < _display.Interval) return false;
        _lastPlain = now;
        _lastPrinted = line;
        _display.WritePlain(line);
        return true;
    }

    /// <summary>Ends the row: the live row stops at its end; plain output gets the last reported line unless it was printed.</summary>
    public void Dispose()
    {
        if (_finished) return;
        _finished = true;
        if (_live is not null) _live.Finish();
        else if (_lastLine is not null && !ReferenceEquals(_lastLine, _lastPrinted)) _display.WritePlain(_lastLine);
    }

    public override string ToString() => _task;
}

/// <summary>The one live Spectre.Console display: started by the first row, ended when the last one finishes.</summary>
internal static class LiveProgress
{
    private static readonly Lock Gate = new();
    private static ProgressContext? _context;
    private static TaskCompletionSource? _stop;
    private static Task? _display;
    private static int _rows;

    /// <summary>True while the display runs: console log lines must go above it (through Spectre).</summary>
    public static bool Active { get { lock (Gate) return _context is not null; } }

    public sealed class Row(ProgressTask task)
    {
        private bool _finished;

        public void Update(string line, double done, double total)
        {
            task.Description = Markup.Escape(line);
            task.MaxValue = total > 0 ? total : 1;
            task.Value = Math.Clamp(done, 0, task.MaxValue);
        }

        public void Finish()
        {
            if (_finished) return;
            _finished = true;
            task.Value = task.MaxValue;
            task.StopTask();
            Release();
        }
    }

    /// <summary>A row for this task, starting the display if none runs; null when the console cannot show one.</summary>
    public static Row? Add(string taskName)
    {
        lock (Gate)
        {
            if (_context is null)
            {
                var started = new TaskCompletionSource<ProgressContext>(TaskCreationOptions.RunContinuationsAsynchronously);
                _stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var stop = _stop.Task;
                _display = AnsiConsole.Progress()
                    .AutoClear(false).AutoRefresh(true)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                        new ElapsedTimeColumn(), new SpinnerColumn())
                    .StartAsync(async ctx => { started.TrySetResult(ctx); await stop; ctx.Refresh(); });
                // The display's failure to start (e.g. the terminal went away) leaves plain lines.
                var first = Task.WhenAny(started.Task, _display).GetAwaiter().GetResult();
                if (first != started.Task) { _stop = null; _display = null; return null; }
                _context = started.Task.Result;
            }
            _rows++;
            return new Row(_context.AddTask(Markup.Escape(taskName), autoStart: true));
        }
    }

    private static void Release()
    {
        Task? display = null;
        lock (Gate)
        {
            if (--_rows > 0) return;
            _stop?.TrySetResult();
            display = _display;
            _context = null; _stop = null; _display = null;
        }
        display?.GetAwaiter().GetResult();
    }

    /// <summary>Prints a rendered log line above the live display.</summary>
    public static void WriteAbove(string text) => AnsiConsole.Write(new Text(text));
}

/// <summary>
/// An IProgress that calls its handler on the reporting thread, at once. System.Progress posts to the thread pool
/// instead, so its reports can arrive out of order or after the work (and its row) has ended.
/// </summary>
public sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
