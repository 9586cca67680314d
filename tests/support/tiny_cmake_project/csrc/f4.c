int f4(void){return 4;}
