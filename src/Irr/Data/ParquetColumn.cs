using Irr.IO;
using Parquet;
using Parquet.Data;
using Parquet.Schema;

namespace Irr.Data;

/// <summary>
/// One top-level column of a parquet file as <see cref="ParquetData"/> reads it into records: a scalar (string, boolean,
/// integer, floating-point number), a struct of scalars (a JSON object; BeaverTails' <c>category</c>), or a list of scalars
/// (a JSON array; SORRY-Bench's <c>turns</c>: the 3-level <c>LIST</c> group pyarrow writes, or a legacy repeated column).
/// Its leaf columns are read with their definition and repetition levels and put back together row by row, as the
/// parquet format's nested encoding (Dremel) defines them: a value is present where its definition level is the leaf's
/// maximum, and a repetition level of 0 starts a row.
/// </summary>
internal sealed class ParquetColumn
{
    // Parquet.Net 6 gives a string column the type ReadOnlyMemory<char>; it is read as strings.
    private static readonly Type[] Scalars = [typeof(ReadOnlyMemory<char>), typeof(bool), typeof(int), typeof(long), typeof(float), typeof(double)];

    private enum Shape { Scalar, Struct, List }

    private readonly Shape _shape;

    private ParquetColumn(Field field, IReadOnlyList<DataField> leaves, Shape shape)
    {
        Field = field;
        Leaves = leaves;
        _shape = shape;
    }

    /// <summary>The top-level field.</summary>
    public Field Field { get; }

    /// <summary>Its leaf columns: the field itself, a struct's fields, or a list's item.</summary>
    public IReadOnlyList<DataField> Leaves { get; }

    /// <summary>The column as records read it, or null for a column left out (bytes, dates, maps, lists of structs, structs of lists …).</summary>
    public static ParquetColumn? Of(Field field) => field switch
    {
        DataField data when IsScalar(data, 0) => new ParquetColumn(field, [data], Shape.Scalar),
        DataField data when data.IsArray && IsScalar(data, 1) => new ParquetColumn(field, [data], Shape.List), // a legacy repeated column
        StructField s when s.Fields.Count > 0 && s.Fields.All(f => f is DataField d && IsScalar(d, 0)) => new ParquetColumn(field, s.Fields.Cast<DataField>().ToList(), Shape.Struct),
        ListField { Item: DataField item } when IsScalar(item, 1) => new ParquetColumn(field, [item], Shape.List),
        _ => null,
    };

    private static bool IsScalar(DataField field, int repetition) => field.MaxRepetitionLevel == repetition && Scalars.Contains(field.ClrType);

    /// <summary>The column's cells in a row group: null, a scalar, a list (<c>object?[]</c>) or a struct (<c>(string, object?)[]</c>): [rows].</summary>
    /// <exception cref="IrrException">The levels do not describe <paramref name="rows"/> rows, or a list is in data page v2 pages (which Parquet.Net 6.1 does not read).</exception>
    public object?[] Read(ParquetRowGroupReader group, int rows, string fileName)
    {
        var leaves = Leaves.Select(l => Leaf.Read(group, l, Field.Name, fileName)).ToList();
        return _shape switch
        {
            Shape.Scalar => ScalarCells(leaves[0], rows, fileName),
            Shape.Struct => StructCells(leaves, rows, fileName),
            _ => ListCells(leaves[0], Field.MaxDefinitionLevel, rows, problem => Corrupt(fileName, problem)),
        };
    }

    private static object?[] ScalarCells(Leaf leaf, int rows, string fileName)
    {
        leaf.RequireEntries(rows, fileName);
        var cells = new object?[rows];
        for (int r = 0; r < rows; r++) cells[r] = leaf.Next(r);
        return cells;
    }

    // A struct is null where its definition level is below the struct's own; its fields are null where theirs is.
    private object?[] StructCells(List<Leaf> leaves, int rows, string fileName)
    {
        foreach (var leaf in leaves) leaf.RequireEntries(rows, fileName);
        var cells = new object?[rows];
        for (int r = 0; r < rows; r++)
        {
            var fields = leaves.Select(l => (l.Name, Value: l.Next(r))).ToArray();
            cells[r] = leaves[0].Definitions[r] < Field.MaxDefinitionLevel ? null : fields;
        }
        return cells;
    }

    /// <summary>
    /// The lists of a list column's leaf: a repetition level of 0 starts a row; its definition level says whether the list
    /// is null (below <paramref name="item"/> - 1), empty (<paramref name="item"/> - 1), or holds an item
    /// (<paramref name="item"/> and up; the item null below the leaf's maximum): [rows] of <c>object?[]</c> or null.
    /// </summary>
    /// <param name="leaf">The leaf's values and levels.</param>
    /// <param name="item">The definition level at which an item is there: the list field's maximum definition level.</param>
    /// <param name="rows">The row group's rows.</param>
    /// <param name="corrupt">Makes the error for levels that describe no lists or another number of rows.</param>
    internal static object?[] ListCells(Leaf leaf, int item, int rows, Func<string, IrrException> corrupt)
    {
        var cells = new object?[rows];
        List<object?>? current = null;
        int row = -1;
        for (int i = 0; i < leaf.Definitions.Length; i++)
        {
            if (leaf.Repetitions[i] == 0)
            {
                Close(cells, row, current);
                if (++row >= rows) throw corrupt($"its levels hold more than the row group's {rows} rows");
                current = leaf.Definitions[i] < item - 1 ? null : [];
            }
            else if (current is not { Count: > 0 } || leaf.Definitions[i] < item)
            {
                throw corrupt("an item continues a null or empty list");
            }
            if (leaf.Definitions[i] >= item) current!.Add(leaf.Next(i));
        }
        Close(cells, row, current);
        if (row + 1 != rows) throw corrupt($"its levels hold {row + 1} rows, the row group {rows}");
        return cells;
    }

    private static void Close(object?[] cells, int row, List<object?>? list)
    {
        if (row >= 0) cells[row] = list?.ToArray();
    }

    private IrrException Corrupt(string fileName, string problem) => new(Diagnostics.Escape($"{fileName}: corrupt parquet column {Field.Name}: {problem}"));

    /// <summary>One leaf column of a row group: its present values in order ([present]) and its levels, one an entry ([entries]).</summary>
    /// <param name="name">The leaf's name (a struct's field name).</param>
    /// <param name="path">The leaf's path in the schema, for errors ("turns/list/element").</param>
    /// <param name="maxDefinition">The leaf's maximum definition level: an entry at it holds a value.</param>
    /// <param name="values">The present values: [present].</param>
    /// <param name="definitions">The definition level of each entry: [entries].</param>
    /// <param name="repetitions">The repetition level of each entry (0 starts a row): [entries].</param>
    internal sealed class Leaf(string name, string path, int maxDefinition, object?[] values, int[] definitions, int[] repetitions)
    {
        private int _next;

        public string Name => name;

        public int[] Definitions => definitions;

        public int[] Repetitions => repetitions;

        // The value of entry i: the next present value, or null where the entry's definition level is below the leaf's.
        public object? Next(int i) => definitions[i] == maxDefinition ? values[_next++] : null;

        public void RequireEntries(int rows, string fileName)
        {
            if (definitions.Length != rows)
                throw new IrrException(Diagnostics.Escape($"{fileName}: corrupt parquet column {path}: {definitions.Length} entries for {rows} rows"));
        }

        public static Leaf Read(ParquetRowGroupReader group, DataField field, string column, string fileName)
        {
            RawColumnData raw;
            try { raw = group.ReadRawColumnDataBaseAsync(field).GetAwaiter().GetResult(); }
            catch (NotImplementedException) when (field.MaxRepetitionLevel > 0)
            {
                // Parquet.Net's own limit, not ours: its reader throws NotImplementedException for the repetition levels of a
                // data page v2 (ParquetDataTests reads such a file, sorry-bench-v2.parquet); said as one line naming the column.
                throw new IrrException(Diagnostics.Escape($"{fileName}: column {column} is a list in data page v2 pages, which Parquet.Net 6.1 does not read " +
                                                          "(pyarrow writes data page v1 unless told data_page_version='2.0'; rewrite the file with v1 pages)"));
            }
            using (raw)
            {
                var values = Values(raw, field.ClrType);
                int[] definitions = field.MaxDefinitionLevel > 0 ? raw.DefinitionLevels.ToArray() : new int[values.Length];
                int[] repetitions = field.MaxRepetitionLevel > 0 ? raw.RepetitionLevels.ToArray() : new int[definitions.Length];
                int present = definitions.Count(d => d == field.MaxDefinitionLevel);
                if (present > values.Length || repetitions.Length != definitions.Length || definitions.Any(d => d < 0 || d > field.MaxDefinitionLevel))
                    throw new IrrException(Diagnostics.Escape($"{fileName}: corrupt parquet column {field.Path}: its levels and values disagree"));
                return new Leaf(field.Name, field.Path.ToString(), field.MaxDefinitionLevel, values[..present], definitions, repetitions);
            }
        }

        // The present values, boxed (Parquet.Net's buffer may be longer than the values it holds).
        private static object?[] Values(RawColumnData raw, Type type) =>
            type == typeof(ReadOnlyMemory<char>) ? Array.ConvertAll(((RawColumnData<ReadOnlyMemory<char>>)raw).Values.ToArray(), m => (object?)m.ToString())
            : type == typeof(bool) ? Boxed<bool>(raw)
            : type == typeof(int) ? Boxed<int>(raw)
            : type == typeof(long) ? Boxed<long>(raw)
            : type == typeof(float) ? Boxed<float>(raw)
            : Boxed<double>(raw);

        private static object?[] Boxed<T>(RawColumnData raw) where T : struct => Array.ConvertAll(((RawColumnData<T>)raw).Values.ToArray(), v => (object?)v);
    }
}
