using Spectre.Console;
using Spectre.Console.Rendering;

namespace Fer.Flow.Cli;

/// <summary>
/// Spectre.Console tables written to a command's stdout: rounded borders and colour on a terminal; on a pipe or
/// file (or a test's StringWriter) plain text, no escape codes, wide enough that rows do not wrap.
/// </summary>
public static class ConsoleTables
{
    public static IAnsiConsole For(TextWriter writer)
    {
        bool terminal = ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        if (!terminal) console.Profile.Width = 400;
        return console;
    }

    /// <summary>
    /// A table with these column headers (a leading '>' right-aligns a column: "&gt;seconds"; '!' keeps its cells
    /// on one line: "!run"). On a pipe it has no
    /// borders: a header line and one line per row, columns apart by spaces, as grep and awk expect.
    /// </summary>
    public static Table Create(TextWriter writer, params string[] columns)
    {
        bool terminal = ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected;
        var table = new Table { Border = terminal ? TableBorder.Rounded : TableBorder.None };
        foreach (var c in columns)
        {
            var column = new TableColumn(new Text(c.TrimStart('>', '!'), new Style(decoration: Decoration.Bold)));
            if (c.StartsWith('>')) column.RightAligned();
            if (c.StartsWith('!')) column.NoWrap();
            table.AddColumn(column);
        }
        return table;
    }

    /// <summary>A row of plain texts (never parsed as Spectre markup: keys hold brackets; control characters escaped).</summary>
    public static void AddTextRow(this Table table, params string[] cells) =>
        table.AddRow(cells.Select(c => (IRenderable)new Text(Fer.Core.Storage.SafeText.Terminal(c))).ToArray());

    public static void Write(TextWriter writer, Table table)
    {
        if (ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected) { For(writer).Write(table); return; }
        // Off a terminal: the same text without the padding that ends each line.
        var text = new StringWriter();
        For(text).Write(table);
        foreach (var line in text.ToString().Split('\n'))
            if (line.TrimEnd() is { Length: > 0 } trimmed) writer.WriteLine(trimmed);
    }
}
