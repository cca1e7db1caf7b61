# bash completion for nvf-tool (installed by Meson under
# share/bash-completion/completions): commands, sub-commands, options, files.
_nvf_tool()
{
	local cur prev words cword
	_init_completion || return
	local commands="create import search info check reindex meta tag field snapshot compact backup help"
	if [[ $cword -eq 1 ]]; then
		COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
		return
	fi
	local cmd=${words[1]}
	case $cmd in
	meta) [[ $cword -eq 2 ]] && { COMPREPLY=($(compgen -W "get set patch train" -- "$cur")); return; } ;;
	tag) [[ $cword -eq 2 ]] && { COMPREPLY=($(compgen -W "add remove list" -- "$cur")); return; } ;;
	field) [[ $cword -eq 2 ]] && { COMPREPLY=($(compgen -W "add drop list" -- "$cur")); return; } ;;
	snapshot) [[ $cword -eq 2 ]] && { COMPREPLY=($(compgen -W "create list delete restore" -- "$cur")); return; } ;;
	help) COMPREPLY=($(compgen -W "$commands" -- "$cur")); return ;;
	esac
	case $prev in
	--metric|-m) COMPREPLY=($(compgen -W "euclidean inner_product cosine angular manhattan chebyshev jaccard hamming" -- "$cur")); return ;;
	--index) COMPREPLY=($(compgen -W "flat hnsw" -- "$cur")); return ;;
	--quantize) COMPREPLY=($(compgen -W "auto none sq4" -- "$cur")); return ;;
	--codec) COMPREPLY=($(compgen -W "none lz4 snappy zstd zstd-dict" -- "$cur")); return ;;
	--type) COMPREPLY=($(compgen -W "string int float bool timestamp tags" -- "$cur")); return ;;
	--plan) COMPREPLY=($(compgen -W "auto exact scan walk acorn" -- "$cur")); return ;;
	--format) COMPREPLY=($(compgen -W "fvecs bvecs npy idx jsonl" -- "$cur")); return ;;
	esac
	if [[ $cur == -* ]]; then
		local opts
		opts=$(nvf-tool "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z-]*' | sort -u)
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	_filedir
}
complete -F _nvf_tool nvf-tool
